//! The in-process token issuer behind `Registry::token`: Docker's token protocol
//! (`GET /token?service=..&scope=..`), ES256 JWTs that distribution 2.8 accepts.
//! Owns keys, certificates and grants; must not start or configure the registry itself.
//!
//! Distribution 2.8 checks `iss`, `aud` (a single string), the `x5c` chain against
//! `rootcertbundle`, and `exp`/`nbf` with 60 s of leeway either side. So that a token
//! really stops working after [`TokenOptions::lifetime`], the `exp` claim is set 60 s
//! before the end of the lifetime; `expires_in` in the JSON answer is the true lifetime.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use super::registry::Credentials;
use super::server::{respond, Handler, HttpRequest, HttpResponse, HttpServer};

/// The leeway distribution 2.8 adds to `exp` and subtracts from `nbf`.
const REGISTRY_LEEWAY: Duration = Duration::from_secs(60);

/// A password whose base64 form holds `+` and `/`: exposes standard-vs-url-safe base64 bugs
/// in `X-Registry-Auth` (see shared/NOTES.md).
pub const TRICKY_PASSWORD: &str = "abc>>>??def";

/// How a token registry's issuer behaves.
#[derive(Clone, Debug)]
pub struct TokenOptions {
    /// The one account the issuer knows.
    pub credentials: Credentials,
    /// Whether a request without credentials gets a (pull-only) token.
    pub allow_anonymous: bool,
    /// How long a token works at the registry; also the `expires_in` answered.
    pub lifetime: Duration,
    /// The `service` (JWT `aud`) the registry announces and the issuer requires.
    pub service: String,
    /// The JWT `iss` the registry trusts.
    pub issuer: String,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions {
            credentials: Credentials::new("ferry", "ferry-token-pass"),
            allow_anonymous: false,
            lifetime: Duration::from_secs(300),
            service: "ferry-e2e-registry".to_string(),
            issuer: "ferry-e2e-issuer".to_string(),
        }
    }
}

impl TokenOptions {
    /// Default options with another account.
    pub fn with_credentials(user: &str, pass: &str) -> Self {
        TokenOptions {
            credentials: Credentials::new(user, pass),
            ..TokenOptions::default()
        }
    }
}

/// One call to `/token`, as the issuer saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The Basic-auth user, `None` for an anonymous request.
    pub user: Option<String>,
    /// Every `scope` parameter, in order.
    pub scopes: Vec<String>,
    /// Whether a token was issued.
    pub granted: bool,
}

struct IssuerState {
    options: TokenOptions,
    key: EcdsaKeyPair,
    cert_der_base64: String,
    rng: SystemRandom,
    issued: AtomicUsize,
    log: Mutex<Vec<TokenRequest>>,
}

/// A running token issuer; stops on `Drop`.
pub(crate) struct TokenIssuer {
    server: HttpServer,
    state: Arc<IssuerState>,
    cert_pem: PathBuf,
}

impl TokenIssuer {
    /// Makes a P-256 key and self-signed certificate in `dir` (openssl CLI) and starts serving.
    pub(crate) fn start(options: TokenOptions, dir: &Path) -> TokenIssuer {
        let key_pem = dir.join("token-key.pem");
        let cert_pem = dir.join("token-cert.pem");
        let output = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=ferry-e2e-token-issuer", "-keyout"])
            .arg(&key_pem)
            .arg("-out")
            .arg(&cert_pem)
            .output()
            .expect("run openssl (missing? run scripts/setup)");
        assert!(
            output.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let key_der = pem_to_der(&key_pem, "PRIVATE KEY");
        let cert_der = pem_to_der(&cert_pem, "CERTIFICATE");
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key_der, &rng)
            .expect("openssl writes a PKCS#8 P-256 key that ring accepts");
        let state = Arc::new(IssuerState {
            options,
            key,
            cert_der_base64: STANDARD.encode(cert_der),
            rng,
            issued: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |request| {
            let state = handler_state.clone();
            Box::pin(async move { state.handle(&request) })
        });
        TokenIssuer {
            server: HttpServer::start(handler),
            state,
            cert_pem,
        }
    }

    /// The realm URL, `http://127.0.0.1:PORT/token`.
    pub(crate) fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr())
    }

    /// The PEM file the registry's `rootcertbundle` must name.
    pub(crate) fn cert_pem(&self) -> &Path {
        &self.cert_pem
    }

    pub(crate) fn options(&self) -> &TokenOptions {
        &self.state.options
    }

    pub(crate) fn issued(&self) -> usize {
        self.state.issued.load(Ordering::SeqCst)
    }

    pub(crate) fn log(&self) -> Vec<TokenRequest> {
        self.state.log.lock().expect("token log lock").clone()
    }
}

impl IssuerState {
    fn handle(&self, request: &HttpRequest) -> HttpResponse {
        if request.uri().path() != "/token" || request.method() != hyper::Method::GET {
            return respond(404, "only GET /token is served");
        }
        let query = request.uri().query().unwrap_or("");
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let scopes: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect();
        let service = pairs.iter().find(|(k, _)| k == "service").map(|(_, v)| v);
        let user = basic_user(request);
        let mut entry = TokenRequest {
            user: user.clone().map(|(u, _)| u),
            scopes: scopes.clone(),
            granted: false,
        };
        let answer = match (&user, service) {
            (_, Some(s)) if *s != self.options.service => {
                respond(400, format!("unknown service {s:?}"))
            }
            (Some((u, p)), _)
                if *u != self.options.credentials.user || *p != self.options.credentials.pass =>
            {
                unauthorized("wrong user or password")
            }
            (None, _) if !self.options.allow_anonymous => unauthorized("credentials required"),
            _ => {
                entry.granted = true;
                self.issue(entry.user.as_deref(), &scopes)
            }
        };
        if entry.granted {
            self.issued.fetch_add(1, Ordering::SeqCst);
        }
        self.log.lock().expect("token log lock").push(entry);
        answer
    }

    fn issue(&self, user: Option<&str>, scopes: &[String]) -> HttpResponse {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970");
        let lifetime = self.options.lifetime;
        let access: Vec<_> = scopes
            .iter()
            .filter_map(|scope| grant(scope, user.is_some()))
            .collect();
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.cert_der_base64]});
        let claims = json!({
            "iss": self.options.issuer,
            "sub": user.unwrap_or(""),
            "aud": self.options.service,
            "exp": (now + lifetime).as_secs() as i64 - REGISTRY_LEEWAY.as_secs() as i64,
            "nbf": now.as_secs(),
            "iat": now.as_secs(),
            "jti": format!("{:032x}", rand::random::<u128>()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("ES256 signing does not fail");
        let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let body = json!({
            "token": token,
            "access_token": token,
            "expires_in": lifetime.as_secs(),
            "issued_at": rfc3339(now),
        });
        let mut response = respond(200, body.to_string());
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// `type:name:actions` → an `access` entry; anonymous callers get `pull` at most.
fn grant(scope: &str, authenticated: bool) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions
        .split(',')
        .filter(|a| authenticated || *a == "pull")
        .collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

fn basic_user(request: &HttpRequest) -> Option<(String, String)> {
    let value = request.headers().get(hyper::header::AUTHORIZATION)?;
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn unauthorized(message: &str) -> HttpResponse {
    let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]});
    let mut response = respond(401, body.to_string());
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Basic realm=\"ferry-e2e-token\""),
    );
    response
}

fn pem_to_der(path: &Path, label: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("read a PEM file openssl wrote");
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body: String = text
        .split(&begin)
        .nth(1)
        .and_then(|rest| rest.split(&end).next())
        .unwrap_or_else(|| panic!("{} holds no {label}", path.display()))
        .split_whitespace()
        .collect();
    STANDARD.decode(body).expect("PEM body is base64")
}

/// `2024-01-02T03:04:05Z` for a time since the Unix epoch (UTC, whole seconds).
pub fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
