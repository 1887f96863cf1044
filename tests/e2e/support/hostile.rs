//! `HostileRegistry`: a registry on 127.0.0.1 that misbehaves on purpose, one way per
//! instance (issue #11): endless tag pages, a manifest that lies about a layer's size, a
//! manifest cut short, a blob that stalls, or silence after `accept`. Raw TCP on its own
//! thread (a hyper server cannot cut or stall a body); stopped on `Drop`.
//! Owns only those wire behaviours; must not call ferry's code.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::fixture::sha256_digest;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// How a [`HostileRegistry`] misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostility {
    /// Every tags/list page holds `usize` new tags and a `Link` to yet another page.
    EndlessTagPages(usize),
    /// The manifest declares its layer as 1,000 bytes; the blob (digest right) has
    /// 20,000,000.
    LyingLayerSize,
    /// The manifest's body is shorter than its `Content-Length` (the server closes), and
    /// no `Docker-Content-Digest` comes with it.
    ShortManifest,
    /// The layer blob sends its headers and 100 bytes, then nothing, ever.
    StalledBlob,
    /// Accepts connections and never answers (not even to a TLS handshake).
    Silent,
    /// A well-behaved registry whose first tag listing answers 503 (then lists `1`).
    FlakyTagList,
}

/// A running hostile registry; see the module docs.
pub struct HostileRegistry {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

/// The image every mode but [`Hostility::EndlessTagPages`] serves as `library/x:1`.
struct Image {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl Image {
    fn new(hostility: Hostility) -> Image {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let layer = match hostility {
            Hostility::LyingLayerSize => vec![b'y'; 20_000_000],
            _ => vec![b'x'; 1000],
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256_digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": sha256_digest(&layer), "size": 1000}],
        });
        let manifest = serde_json::to_vec(&manifest).expect("manifest JSON");
        Image {
            config,
            layer,
            manifest,
        }
    }
}

impl HostileRegistry {
    /// Starts one on a free port of 127.0.0.1.
    pub fn start(hostility: Hostility) -> HostileRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener, so Drop can stop the thread");
        let addr = listener.local_addr().expect("read the bound address");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            hostility,
            image: Arc::new(Image::new(hostility)),
            page: Arc::new(AtomicUsize::new(0)),
            stop: stop.clone(),
            requests: requests.clone(),
        };
        let count = connections.clone();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        if hostility == Hostility::Silent {
                            held.push(stream);
                        } else {
                            let shared = shared.clone();
                            std::thread::spawn(move || shared.serve(stream));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HostileRegistry {
            addr,
            stop,
            requests,
            connections,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, as used in image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Requests (`METHOD PATH`) received whose path contains `part`.
    pub fn hits(&self, part: &str) -> usize {
        let log = self.requests.lock().expect("request log");
        log.iter().filter(|line| line.contains(part)).count()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for HostileRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Clone)]
struct Shared {
    hostility: Hostility,
    image: Arc<Image>,
    page: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if !head[0].is_ascii_uppercase() {
                return; // a TLS ClientHello: closed at once, as a plain HTTP server does
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut words = text.split_whitespace();
        let method = words.next().unwrap_or("").to_owned();
        let path = words.next().unwrap_or("/").to_owned();
        if let Ok(mut log) = self.requests.lock() {
            log.push(format!("{method} {path}"));
        }
        let head_only = method == "HEAD";
        let image = &self.image;
        if path == "/v2/" {
            return answer(&mut stream, &[], b"{}", head_only);
        }
        if path.contains("/tags/list") {
            if self.hostility == Hostility::FlakyTagList
                && self.page.fetch_add(1, Ordering::SeqCst) == 0
            {
                return status(&mut stream, "503 Service Unavailable");
            }
            let Hostility::EndlessTagPages(per_page) = self.hostility else {
                return answer(&mut stream, &[], br#"{"tags":["1"]}"#, head_only);
            };
            let n = self.page.fetch_add(1, Ordering::SeqCst);
            let tags: Vec<String> = (0..per_page).map(|i| format!("p{n}-{i}")).collect();
            let body = serde_json::to_vec(&serde_json::json!({ "tags": tags })).expect("JSON");
            let link = format!("Link: </v2/library/x/tags/list?page={n}>; rel=\"next\"");
            return answer(&mut stream, &[&link], &body, head_only);
        }
        if path.contains("/manifests/") {
            let content_type = format!("Content-Type: {OCI_MANIFEST}");
            if self.hostility == Hostility::ShortManifest && !head_only {
                let head = format!(
                    "HTTP/1.1 200 OK\r\n{content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    image.manifest.len() + 40
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&image.manifest);
                return;
            }
            let digest = format!("Docker-Content-Digest: {}", sha256_digest(&image.manifest));
            let headers: Vec<&str> = match self.hostility {
                Hostility::ShortManifest => vec![&content_type],
                _ => vec![&content_type, &digest],
            };
            return answer(&mut stream, &headers, &image.manifest, head_only);
        }
        let blob = path.rsplit('/').next().unwrap_or_default();
        let body = if blob == sha256_digest(&image.config) {
            &image.config
        } else if blob == sha256_digest(&image.layer) {
            &image.layer
        } else {
            return status(&mut stream, "404 Not Found");
        };
        if self.hostility == Hostility::StalledBlob && body == &image.layer && !head_only {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..100]);
            while !self.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        answer(&mut stream, &[], body, head_only);
    }
}

fn answer(stream: &mut TcpStream, headers: &[&str], body: &[u8], head_only: bool) {
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    if !head_only {
        let _ = stream.write_all(body);
    }
}

fn status(stream: &mut TcpStream, status: &str) {
    let head = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
}
