//! `Registry`: a real CNCF distribution 2.8 (`docker-registry serve`) per test, on
//! 127.0.0.1 and a free port, with its own storage; killed and deleted on `Drop`.
//! Owns process, config and readiness; must not push content (see `fixture`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pager::TagPager;
use super::token::{TokenIssuer, TokenOptions, TokenRequest};

/// A user name and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub pass: String,
}

impl Credentials {
    /// Builds credentials from borrowed strings.
    pub fn new(user: &str, pass: &str) -> Self {
        Credentials {
            user: user.to_string(),
            pass: pass.to_string(),
        }
    }
}

/// How clients authenticate to a [`Registry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// No authentication.
    Anonymous,
    /// HTTP Basic against an htpasswd file.
    Basic,
    /// Bearer tokens from the in-process issuer.
    Token,
}

/// A running distribution registry; see the module docs.
pub struct Registry {
    // Field order is drop order: the process goes before its directory.
    child: Child,
    pager: Option<TagPager>,
    issuer: Option<TokenIssuer>,
    mode: AuthMode,
    credentials: Option<Credentials>,
    port: u16,
    pid_file: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// A registry without authentication.
    pub fn anonymous() -> Registry {
        Registry::start(AuthMode::Anonymous, None, None)
    }

    /// A registry behind htpasswd Basic auth with one account.
    pub fn basic(user: &str, pass: &str) -> Registry {
        Registry::start(AuthMode::Basic, Some(Credentials::new(user, pass)), None)
    }

    /// A registry behind Docker token auth, its issuer running in-process.
    pub fn token(options: TokenOptions) -> Registry {
        let credentials = options.credentials.clone();
        Registry::start(AuthMode::Token, Some(credentials), Some(options))
    }

    /// Puts a front in place that pages `GET /v2/NAME/tags/list` (at most `page_size`
    /// tags a page, sorted, with a `Link: <…>; rel="next"` header) and passes everything
    /// else through; [`Registry::host`] then names the front. Distribution 2.8 itself
    /// ignores `n` and `last` on tags/list and answers every tag in storage order.
    pub fn with_tag_pages(mut self, page_size: usize) -> Registry {
        assert!(page_size > 0, "a page holds at least one tag");
        self.pager = Some(TagPager::start(self.port, page_size));
        self
    }

    /// `127.0.0.1:PORT`, as used in image references.
    pub fn host(&self) -> String {
        match &self.pager {
            Some(pager) => pager.addr().to_string(),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The account, for Basic and token registries.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// How clients authenticate here.
    pub fn mode(&self) -> &AuthMode {
        &self.mode
    }

    /// How many tokens the issuer has handed out (0 for non-token registries).
    pub fn token_requests(&self) -> usize {
        self.issuer.as_ref().map_or(0, TokenIssuer::issued)
    }

    /// Every `/token` call so far, granted or not (empty for non-token registries).
    pub fn token_log(&self) -> Vec<TokenRequest> {
        self.issuer.as_ref().map_or_else(Vec::new, TokenIssuer::log)
    }

    /// The issuer's options, for token registries.
    pub fn token_options(&self) -> Option<&TokenOptions> {
        self.issuer.as_ref().map(TokenIssuer::options)
    }

    /// The registry's storage root (filesystem driver), for tests that inspect blobs.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Every request the registry answered so far, in order, from its log ("response
    /// completed" lines): what a test counts (blob PUTs, manifest GETs).
    pub fn requests(&self) -> Vec<Request> {
        let text =
            std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        text.lines()
            .filter(|line| line.contains("msg=\"response completed\""))
            .filter_map(|line| {
                Some(Request {
                    method: log_field(line, "http.request.method")?,
                    uri: log_field(line, "http.request.uri")?,
                    status: log_field(line, "http.response.status")?.parse().ok()?,
                })
            })
            .collect()
    }

    /// The last lines of the registry's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("registry.log"))
    }

    fn start(
        mode: AuthMode,
        credentials: Option<Credentials>,
        token: Option<TokenOptions>,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ferry-e2e-registry-")
            .tempdir()
            .expect("create a temp dir for the registry");
        let auth_yaml = match (&mode, &credentials) {
            (AuthMode::Basic, Some(c)) => htpasswd_auth(dir.path(), c),
            _ => String::new(),
        };
        let issuer = token.map(|options| TokenIssuer::start(options, dir.path()));
        let auth_yaml = match &issuer {
            Some(issuer) => format!(
                "auth:\n  token:\n    realm: \"{}\"\n    service: \"{}\"\n    issuer: \"{}\"\n    rootcertbundle: \"{}\"\n",
                issuer.realm(),
                issuer.options().service,
                issuer.options().issuer,
                issuer.cert_pem().display()
            ),
            None => auth_yaml,
        };
        let mut failures = Vec::new();
        for _attempt in 0..5 {
            let port = free_port();
            let instance = format!("{:016x}", rand::random::<u64>());
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                config_yaml(dir.path(), port, &instance, &auth_yaml),
            )
            .expect("write the registry config");
            let log = dir.path().join("registry.log");
            let child = spawn_registry(&config, &log);
            match wait_ready(child, port, &instance) {
                Ok(child) => {
                    let pid_file = record_pid(child.id());
                    return Registry {
                        child,
                        pager: None,
                        issuer,
                        mode,
                        credentials,
                        port,
                        pid_file,
                        dir,
                    };
                }
                Err(why) => failures.push(format!("port {port}: {why}\n{}", log_tail(&log))),
            }
        }
        panic!("docker-registry did not start:\n{}", failures.join("\n"));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid_file) = &self.pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
    }
}

fn config_yaml(dir: &Path, port: u16, instance: &str, auth_yaml: &str) -> String {
    // `X-Ferry-Instance` proves the readiness probe reached this process, not another
    // test's registry that won the race for the same port.
    format!(
        "version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: \"{storage}\"
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: \"ferry-e2e-{instance}\"
  headers:
    X-Ferry-Instance: [\"{instance}\"]
{auth_yaml}",
        storage = dir.join("storage").display()
    )
}

fn htpasswd_auth(dir: &Path, credentials: &Credentials) -> String {
    let output = Command::new("htpasswd")
        .args(["-Bbn", &credentials.user, &credentials.pass])
        .output()
        .expect("run htpasswd (missing? run scripts/setup)");
    assert!(output.status.success(), "htpasswd failed: {output:?}");
    let path = dir.join("htpasswd");
    std::fs::write(&path, &output.stdout).expect("write the htpasswd file");
    format!(
        "auth:\n  htpasswd:\n    realm: ferry-e2e\n    path: \"{}\"\n",
        path.display()
    )
}

fn spawn_registry(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("create the registry log");
    Command::new("docker-registry")
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log)
        .spawn()
        .expect("start docker-registry (missing? run scripts/setup)")
}

/// Binds port 0 to learn a free port, then releases it for the registry to take.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port on 127.0.0.1");
    listener.local_addr().expect("read the bound port").port()
}

fn wait_ready(mut child: Child, port: u16, instance: &str) -> Result<Child, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("docker-registry exited with {status}"));
        }
        if probe(port, instance) {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("no answer on /v2/ within 20 s".to_string())
}

/// True when `GET /v2/` answers 200 or 401 with our instance header.
fn probe(port: u16, instance: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status_ok = answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.0 401");
    status_ok && answer.contains(instance)
}

/// Notes `$FERRY_ENV_STATE/registries/PID` holding the test process's own pid, so
/// scripts/lib/env.sh can reap registries whose test binary was killed before `Drop`.
fn record_pid(pid: u32) -> Option<PathBuf> {
    let state = std::env::var("FERRY_ENV_STATE").unwrap_or_else(|_| "/tmp/ferry-test-env".into());
    let dir = Path::new(&state).join("registries");
    std::fs::create_dir_all(&dir).ok()?;
    let file = dir.join(pid.to_string());
    std::fs::write(&file, format!("{}\n", std::process::id())).ok()?;
    Some(file)
}

/// One request a registry answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, `PUT` …
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    /// The status answered.
    pub status: u16,
}

impl Request {
    /// The blob a finished upload (`PUT …/blobs/uploads/…?digest=…`) committed, if this
    /// is one.
    pub fn uploaded_blob(&self) -> Option<String> {
        if self.method != "PUT" || !self.uri.contains("/blobs/uploads/") {
            return None;
        }
        let query = self.uri.split_once('?')?.1;
        let digest = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("digest="))?;
        Some(digest.replace("%3A", ":").replace("%3a", ":"))
    }
}

/// The value of `key=value` or `key="value"` in a logrus line.
fn log_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next().map(str::to_owned);
    }
    rest.split(' ').next().map(str::to_owned)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
