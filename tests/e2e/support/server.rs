//! A small HTTP/1.1 server on its own thread and tokio runtime, for in-process fakes
//! (token issuer, tag pager). Owns no routing or protocol logic: handlers bring that.
//!
//! Running on a dedicated thread matters: a test that blocks its own runtime on a
//! `docker` or `ferry` subprocess must not starve the token issuer that subprocess calls.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// A request with its whole body read.
pub type HttpRequest = Request<Bytes>;
/// A response with an in-memory body.
pub type HttpResponse = Response<Full<Bytes>>;
/// What an [`HttpServer`] calls for every request.
pub type Handler = Arc<dyn Fn(HttpRequest) -> BoxFuture<'static, HttpResponse> + Send + Sync>;

/// An HTTP server on 127.0.0.1 and a free port, stopped on `Drop`.
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds a free port on 127.0.0.1 (kept open, so no other test can take it) and serves
    /// `handler` there until dropped.
    pub fn start(handler: Handler) -> HttpServer {
        HttpServer::start_on("127.0.0.1", handler)
    }

    /// The same on another loopback address (`127.0.0.2` …), for a second "host".
    pub fn start_on(ip: &str, handler: Handler) -> HttpServer {
        let listener = TcpListener::bind((ip, 0)).expect("bind a free port on a loopback address");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking for tokio");
        let addr = listener.local_addr().expect("read the bound address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("e2e-http-{}", addr.port()))
            .spawn(move || serve(listener, handler, stop))
            .expect("spawn the HTTP server thread");
        HttpServer {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The address served, `IP:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: TcpListener, handler: Handler, mut stop: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build the HTTP server runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .expect("hand the listener to tokio (inside a runtime)");
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let handler = handler.clone();
                            async move { Ok::<_, Infallible>(call(&handler, request).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    });
}

async fn call(handler: &Handler, request: Request<Incoming>) -> HttpResponse {
    let (parts, body) = request.into_parts();
    match body.collect().await {
        Ok(collected) => handler(Request::from_parts(parts, collected.to_bytes())).await,
        Err(error) => respond(400, format!("could not read the request body: {error}")),
    }
}

/// A plain response with a status and a text or JSON body.
pub fn respond(status: u16, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).expect("handlers use valid status codes");
    response
}
