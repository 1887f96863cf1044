//! The docker CLI's `config.json`: inline `auths`, `credHelpers` and `credsStore`.
//!
//! Owns parsing that file and running `docker-credential-NAME get`; it must not fall back
//! to other credentials when a configured helper fails, and must not echo file contents
//! nor anything a helper prints (a failing helper may print the secret it holds).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{normalize_host, CredentialError, Credentials};
use crate::local_file;
use crate::reference::DOCKER_HUB;
use crate::secret::Secret;

/// Server address docker uses for Docker Hub in config.json and with credential helpers.
const HUB_SERVER: &str = "https://index.docker.io/v1/";
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed docker `config.json` (only the parts about credentials).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthConfig>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    /// What each (helper, server) answered this run: a helper is asked once per server,
    /// however many repositories of it a run touches (a hanging one costs one timeout).
    #[serde(skip)]
    answers: Arc<tokio::sync::Mutex<HashMap<(String, String), HelperAnswer>>>,
}

/// What one helper said for one server.
type HelperAnswer = Result<Option<Credentials>, CredentialError>;

#[derive(Debug, Clone, Default, Deserialize)]
struct AuthConfig {
    #[serde(default)]
    auth: Option<Secret>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    identitytoken: Option<Secret>,
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: Secret,
}

impl DockerConfig {
    /// Reads `path` (a regular file of at most 16 MiB); `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, CredentialError> {
        let text = match local_file::read_text(path, local_file::MAX_CONFIG_FILE) {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(None),
            Err(e) => return Err(config_error(path, e.to_string())),
        };
        Self::parse(&text)
            .map(Some)
            .map_err(|cause| config_error(path, cause))
    }

    /// Parses the JSON text; the error names line and column only (never a value).
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            format!(
                "invalid JSON ({:?} error) at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            )
        })
    }

    /// Credentials for a canonical registry host, running a helper when one is configured.
    pub(super) async fn resolve(
        &self,
        registry: &str,
        helper_path: &OsStr,
    ) -> Result<Option<Credentials>, CredentialError> {
        let registry = normalize_host(registry);
        let server = if registry == DOCKER_HUB {
            HUB_SERVER.to_owned()
        } else {
            registry.clone()
        };
        if let Some(helper) = lookup(&self.cred_helpers, &registry) {
            return self.ask(helper, &server, helper_path).await;
        }
        if let Some(entry) = lookup(&self.auths, &registry) {
            if let Some(found) = entry.credentials(&server)? {
                return Ok(Some(found));
            }
        }
        match self.creds_store.as_deref().filter(|s| !s.is_empty()) {
            Some(store) => self.ask(store, &server, helper_path).await,
            None => Ok(None),
        }
    }

    /// The helper's answer for `server`, asked at most once per run.
    async fn ask(&self, helper: &str, server: &str, helper_path: &OsStr) -> HelperAnswer {
        let mut answers = self.answers.lock().await;
        let key = (helper.to_owned(), server.to_owned());
        if let Some(answer) = answers.get(&key) {
            return answer.clone();
        }
        let answer = run_helper(helper, server, helper_path).await;
        answers.insert(key, answer.clone());
        answer
    }
}

/// The entry for `registry`: a key written exactly as the host wins over a URL form.
fn lookup<'a, V>(map: &'a BTreeMap<String, V>, registry: &str) -> Option<&'a V> {
    map.get(registry).or_else(|| {
        map.iter()
            .find(|(key, _)| normalize_host(key) == registry)
            .map(|(_, value)| value)
    })
}

impl AuthConfig {
    fn credentials(&self, server: &str) -> Result<Option<Credentials>, CredentialError> {
        if let Some(token) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.clone())));
        }
        if let Some(auth) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let invalid = |what: &str| CredentialError::DockerConfig {
                path: PathBuf::from("config.json"),
                cause: format!("auths entry for {server}: {what}"),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.expose().trim())
                .map_err(|_| invalid("`auth` is not valid base64"))?;
            let decoded = String::from_utf8(decoded).map_err(|_| invalid("`auth` is not UTF-8"))?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| invalid("`auth` is not `user:password`"))?;
            return Ok(Some(Credentials::Basic {
                username: username.to_owned(),
                password: Secret::new(password),
            }));
        }
        match (&self.username, &self.password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Ok(Some(Credentials::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }))
            }
            _ => Ok(None),
        }
    }
}

fn config_error(path: &Path, cause: String) -> CredentialError {
    CredentialError::DockerConfig {
        path: path.to_owned(),
        cause,
    }
}

/// Most bytes a helper may print on stdout or stderr (an answer is a few hundred).
const HELPER_OUTPUT: u64 = 1024 * 1024;

/// The helper's exit status and output, or `None` when it printed more than
/// [`HELPER_OUTPUT`] bytes on either stream (then it is killed: it never fills memory).
async fn bounded_output(
    child: &mut tokio::process::Child,
) -> std::io::Result<Option<std::process::Output>> {
    use tokio::io::AsyncReadExt;
    async fn read(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        if let Some(pipe) = pipe {
            pipe.take(HELPER_OUTPUT + 1).read_to_end(&mut bytes).await?;
        }
        Ok(bytes)
    }
    let (stdout, stderr) = tokio::try_join!(read(child.stdout.take()), read(child.stderr.take()))?;
    let limit = usize::try_from(HELPER_OUTPUT).unwrap_or(usize::MAX);
    if stdout.len() > limit || stderr.len() > limit {
        let _ = child.kill().await;
        return Ok(None);
    }
    let status = child.wait().await?;
    Ok(Some(std::process::Output {
        status,
        stdout,
        stderr,
    }))
}

/// Runs `docker-credential-NAME get` with the server URL on stdin.
async fn run_helper(
    name: &str,
    server: &str,
    helper_path: &OsStr,
) -> Result<Option<Credentials>, CredentialError> {
    let fail = |cause: String| CredentialError::Helper {
        helper: name.to_owned(),
        server: server.to_owned(),
        cause,
    };
    let program = format!("docker-credential-{name}");
    let binary = std::env::split_paths(helper_path)
        .map(|dir| dir.join(&program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| fail(format!("{program} not found on PATH")))?;
    let mut child = tokio::process::Command::new(&binary)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its exit status.
        match stdin.write_all(server.as_bytes()).await {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(fail(format!("writing stdin: {e}")));
            }
            _ => {}
        }
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, bounded_output(&mut child))
        .await
        .map_err(|_| fail(format!("no answer within {}s", HELPER_TIMEOUT.as_secs())))?
        .map_err(|e| fail(format!("waiting: {e}")))?
        .ok_or_else(|| fail(format!("printed more than {HELPER_OUTPUT} bytes")))?;
    if !output.status.success() {
        // Read only to recognise the "not found" answer: a failing helper may print the
        // secret it holds, so its output never goes into a message.
        let text = format!(
            "{} {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(match output.status.code() {
            Some(code) => format!("exited with code {code}"),
            None => "killed by a signal".to_owned(),
        }));
    }
    let answer: HelperOutput = serde_json::from_slice(&output.stdout).map_err(|e| {
        fail(format!(
            "output is not the expected JSON (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    if answer.username.is_empty() && answer.secret.is_empty() {
        return Ok(None);
    }
    if answer.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(answer.secret)));
    }
    Ok(Some(Credentials::Basic {
        username: answer.username,
        password: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{CredentialStore, Side};
    use std::os::unix::fs::PermissionsExt;

    /// A fake `docker-credential-NAME` that answers per server URL read from stdin.
    fn fake_helper(dir: &Path, name: &str, script_body: &str) {
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\nread server\n{script_body}\n"))
            .expect("write helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn store(dir: &Path, json: &str) -> CredentialStore {
        let path = dir.join("config.json");
        std::fs::write(&path, json).expect("write config");
        let config = DockerConfig::load(&path).expect("parses").expect("exists");
        CredentialStore::new(vec![], Some(config), None).with_helper_path(dir.as_os_str())
    }

    fn basic(c: Option<Credentials>) -> Option<(String, String)> {
        match c {
            Some(Credentials::Basic { username, password }) => {
                Some((username, password.expose().to_owned()))
            }
            Some(Credentials::IdentityToken(t)) => Some(("<token>".into(), t.expose().to_owned())),
            None => None,
        }
    }

    #[tokio::test]
    async fn inline_auths_in_every_spelling() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b64 = base64::engine::general_purpose::STANDARD.encode("hubuser:hub:pw");
        let json = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{b64}"}},
                "https://lab.example:5000/v2/": {{"username": "lab", "password": "labpw"}},
                "tok.example": {{"identitytoken": "refresh"}}
            }}}}"#
        );
        let store = store(dir.path(), &json);
        let get = |r: &'static str| store.resolve(r, "x/y", Side::Source);
        assert_eq!(
            basic(get("docker.io").await.expect("ok")),
            Some(("hubuser".into(), "hub:pw".into()))
        );
        assert_eq!(
            basic(get("lab.example:5000").await.expect("ok")),
            Some(("lab".into(), "labpw".into()))
        );
        assert_eq!(
            basic(get("tok.example").await.expect("ok")),
            Some(("<token>".into(), "refresh".into()))
        );
        assert_eq!(basic(get("other.example").await.expect("ok")), None);
    }

    #[tokio::test]
    async fn helpers_answer_fail_or_find_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        fake_helper(
            dir.path(),
            "fake",
            r#"case "$server" in
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"hub","Secret":"hubsecret"}' ;;
  good.example) echo '{"ServerURL":"x","Username":"<token>","Secret":"idtok"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac"#,
        );
        fake_helper(dir.path(), "broken", "echo 'keychain locked' >&2; exit 3");
        let store = store(
            dir.path(),
            r#"{"credsStore": "fake", "credHelpers": {"bad.example": "broken", "gone.example": "missing"},
                "auths": {"inline.example": {"username": "in", "password": "inpw"}}}"#,
        );
        let get = |r: &'static str| store.resolve(r, "x", Side::Source);
        assert_eq!(
            basic(get("docker.io").await.expect("ok")),
            Some(("hub".into(), "hubsecret".into()))
        );
        assert_eq!(
            basic(get("good.example").await.expect("ok")),
            Some(("<token>".into(), "idtok".into()))
        );
        assert_eq!(
            basic(get("nothing.example").await.expect("ok")),
            None,
            "not found = anonymous"
        );
        assert_eq!(
            basic(get("inline.example").await.expect("ok")),
            Some(("in".into(), "inpw".into()))
        );
        let broken = get("bad.example")
            .await
            .expect_err("a failing helper is an error");
        assert_eq!(
            broken.to_string(),
            "credential helper docker-credential-broken for bad.example: exited with code 3",
            "the helper and its exit code, never its output"
        );
        let missing = get("gone.example")
            .await
            .expect_err("a missing helper is an error");
        assert!(
            missing.to_string().contains("not found on PATH"),
            "{missing}"
        );
    }

    #[tokio::test]
    async fn a_failing_helper_that_prints_the_secret_is_named_without_its_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        fake_helper(
            dir.path(),
            "leaky",
            "echo 'Secret: hunter2-leaked' >&2; echo '{\"Secret\":\"hunter2-leaked\"}'; exit 1",
        );
        let store = store(dir.path(), r#"{"credHelpers": {"leak.example": "leaky"}}"#);
        let error = store
            .resolve("leak.example", "x", Side::Source)
            .await
            .expect_err("a failing helper is an error");
        let text = format!("{error} {error:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            error
                .to_string()
                .ends_with("docker-credential-leaky for leak.example: exited with code 1"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn target_env_is_for_the_push_side_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{}").expect("write");
        let config = DockerConfig::load(&path).expect("ok");
        let env = Credentials::Basic {
            username: "tu".into(),
            password: Secret::new("tp"),
        };
        let store = CredentialStore::new(vec![], config, Some(env));
        assert_eq!(
            basic(store.resolve("a.io", "x", Side::Source).await.expect("ok")),
            None
        );
        assert_eq!(
            basic(store.resolve("a.io", "x", Side::Target).await.expect("ok")),
            Some(("tu".into(), "tp".into()))
        );
    }

    #[test]
    fn parse_errors_never_echo_values() {
        let err =
            DockerConfig::parse(r#"{"auths": {"x": {"auth": 12345678}}}"#).expect_err("bad type");
        assert!(!err.contains("12345678"), "{err}");
        let err = DockerConfig::parse(r#"{"auths": "supersecret"}"#).expect_err("bad type");
        assert!(!err.contains("supersecret"), "{err}");
        assert!(DockerConfig::load(Path::new("/nonexistent/config.json"))
            .expect("ok")
            .is_none());
    }

    #[tokio::test]
    async fn an_endless_helper_is_cut_off_and_a_helper_is_asked_once_per_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        fake_helper(
            dir.path(),
            "endless",
            "yes 'a line the helper never stops writing'",
        );
        let calls = dir.path().join("calls");
        fake_helper(
            dir.path(),
            "counted",
            &format!(
                "echo x >> {}; echo '{{\"Username\":\"u\",\"Secret\":\"s\"}}'",
                calls.display()
            ),
        );
        let store = store(
            dir.path(),
            r#"{"credHelpers": {"endless.example": "endless", "counted.example": "counted"}}"#,
        );
        let started = std::time::Instant::now();
        let error = store
            .resolve("endless.example", "team/app", Side::Source)
            .await
            .expect_err("cut off");
        assert!(
            error
                .to_string()
                .contains("printed more than 1048576 bytes"),
            "{error}"
        );
        assert!(!error.to_string().contains("never stops"), "{error}");
        assert!(started.elapsed() < HELPER_TIMEOUT, "not waited out");
        for repository in ["team/a", "team/b", "team/c"] {
            let found = store
                .resolve("counted.example", repository, Side::Source)
                .await
                .expect("ok");
            assert_eq!(basic(found), Some(("u".into(), "s".into())));
        }
        let asked = std::fs::read_to_string(&calls).expect("the helper ran");
        assert_eq!(asked.lines().count(), 1, "asked once for the server");
    }
}
