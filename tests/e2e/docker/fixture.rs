//! Fixtures of the Docker e2e tests: a private registry process, busybox build contexts,
//! image cleanup and an event recorder. To be replaced by the shared `support` module.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry::docker::{BuildContext, BuildRequest, DockerEvent};
use ferry::event::LayerStatus;
use ferry::reference::Reference;

/// A `docker-registry serve` on 127.0.0.1, storage in a temp dir, killed on drop.
pub(super) struct TestRegistry {
    child: Child,
    pub(super) host: String,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    pub(super) fn anonymous() -> Self {
        TestRegistry::start(None)
    }

    pub(super) fn with_htpasswd(user: &str, password: &str) -> Self {
        TestRegistry::start(Some((user, password)))
    }

    fn start(login: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut auth = String::new();
        if let Some((user, password)) = login {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd runs");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                file.display()
            );
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                    dir.path().join("data").display()
                ),
            )
            .expect("write config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("docker-registry starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return TestRegistry {
                        child,
                        host: format!("127.0.0.1:{port}"),
                        _dir: dir,
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // the port was taken in the meantime: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    pub(super) fn reference(&self, path_and_tag: &str) -> Reference {
        format!("{}/{path_and_tag}", self.host)
            .parse()
            .expect("valid reference")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes the images a test made, whatever happened to the test.
#[derive(Default)]
pub(super) struct Images(Mutex<Vec<String>>);

impl Images {
    pub(super) fn keep(&self, image: impl Into<String>) {
        self.0.lock().expect("lock").push(image.into());
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let images = std::mem::take(&mut *self.0.lock().expect("lock"));
        if !images.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&images)
                .output();
        }
    }
}

/// A value no other test (or earlier run) uses.
pub(super) fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Context tar: `FROM scratch`, static busybox at /bin/busybox, /bin/sh a symlink to it,
/// and `marker` in /etc/ferry-e2e so that the layer is this test's own.
pub(super) fn busybox_context(marker: &str) -> Bytes {
    let mut tar = tar::Builder::new(Vec::new());
    let dockerfile = b"FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sh\"]\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "Dockerfile", &dockerfile[..])
        .expect("Dockerfile");
    for dir in ["rootfs", "rootfs/bin", "rootfs/etc"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())
            .expect("dir");
    }
    tar.append_path_with_name(Path::new("/bin/busybox"), "rootfs/bin/busybox")
        .expect("busybox-static is installed");
    let mut header = tar::Header::new_gnu();
    header.set_size(marker.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "rootfs/etc/ferry-e2e", marker.as_bytes())
        .expect("marker");
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_mode(0o777);
    header.set_size(0);
    tar.append_link(&mut header, "rootfs/bin/sh", "busybox")
        .expect("symlink");
    Bytes::from(tar.into_inner().expect("tar"))
}

/// A build of the busybox context marked and labelled `ferry.e2e=<label>`, without the
/// build cache (parallel tests must not share intermediate images).
pub(super) fn busybox_build(tags: Vec<Reference>, label: &str) -> BuildRequest {
    let mut build = BuildRequest::new(BuildContext::Tar(busybox_context(label)), tags);
    build.labels = BTreeMap::from([("ferry.e2e".to_owned(), label.to_owned())]);
    build.no_cache = true;
    build
}

/// Collects events for assertions.
#[derive(Default)]
pub(super) struct Recorder(Mutex<Vec<DockerEvent>>);

impl Recorder {
    pub(super) fn sink(&self) -> impl Fn(DockerEvent) + Send + Sync + '_ {
        |event| self.0.lock().expect("lock").push(event)
    }

    pub(super) fn layer_statuses(&self) -> Vec<LayerStatus> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|e| match e {
                DockerEvent::Layer(layer) => Some(layer.status),
                DockerEvent::BuildOutput { .. } => None,
            })
            .collect()
    }

    pub(super) fn build_lines(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|e| match e {
                DockerEvent::BuildOutput { line, .. } => Some(line.clone()),
                DockerEvent::Layer(_) => None,
            })
            .collect()
    }
}
