//! The `/metrics` endpoint: hyper's HTTP/1.1 server on a one-thread tokio runtime.
//!
//! [`serve`] binds the listener on the caller's thread, so a taken address is an error at once
//! and port 0 is resolved before it returns. A thread named `pond-metrics` then runs a
//! current-thread tokio runtime: one task accepts connections, and one task per connection lets
//! hyper read the request and write the response that [`respond`] builds from its method and
//! path. That thread is the endpoint's only one, whatever the rest of the process does.
//!
//! Bounds, so that a misbehaving client costs little: at most [`MAX_CONNECTIONS`] connections
//! are served at once (more wait in the listen backlog); a client gets [`REQUEST_DEADLINE`] to
//! send a request head of at most [`REQUEST_HEAD_LIMIT`] bytes (hyper answers 431 past it, 400 to
//! what does not parse), and [`CONNECTION_DEADLINE`] for the whole exchange. Every response
//! closes its connection (`Connection: close`): a scraper opens one per scrape anyway.
//!
//! [`MetricsServer`] owns the thread. Dropping it drops the sending half of a channel the thread
//! waits on; the thread then drops its runtime, which cancels the accept loop and every open
//! connection and closes the listener, and the drop joins the thread.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::prometheus_text;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::Metrics;

/// Largest request head (request line plus headers); hyper answers 431 past it.
const REQUEST_HEAD_LIMIT: usize = 8 * 1024;
/// Time a client gets to send its whole request head.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Time a whole exchange may take, the response to a client that does not read included.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// Connections served at once; a scraper needs one.
const MAX_CONNECTIONS: usize = 16;
/// Pause after a failed `accept` (such as running out of file descriptors) so a persistent
/// error does not spin a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Errors starting the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// Starting the server's thread or its runtime failed.
    #[error("metrics server thread for {addr}: {source}")]
    Spawn {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// The running endpoint; dropping it stops serving and joins the thread.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    /// Never sent on: dropping it tells the thread to stop.
    stop: Option<oneshot::Sender<Infallible>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The bound address (with the actual port when port 0 was requested).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(addr = %self.local_addr, "the metrics server thread panicked");
        }
    }
}

pub(crate) fn serve(metrics: Metrics, addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
    let bind_error = |source| MetricsError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let spawn_error = |source| MetricsError::Spawn {
        addr: local_addr,
        source,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(spawn_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let listener = {
        let _context = runtime.enter();
        TcpListener::from_std(listener).map_err(bind_error)?
    };
    let (stop, stopped) = oneshot::channel();
    let thread = thread::Builder::new()
        .name("pond-metrics".to_owned())
        .spawn(move || {
            runtime.spawn(accept_loop(listener, metrics));
            // Returns once the `MetricsServer` has dropped its sender; then the runtime is
            // dropped, and with it the accept loop, the listener and every connection.
            let _stopped = runtime.block_on(stopped);
        })
        .map_err(spawn_error)?;
    tracing::debug!(addr = %local_addr, "serving metrics");
    Ok(MetricsServer {
        local_addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

async fn accept_loop(listener: TcpListener, metrics: Metrics) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // `acquire_owned` fails only on a closed semaphore, and this one is never closed.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _peer)) => {
                tokio::spawn(serve_connection(stream, metrics.clone(), slot));
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a metrics connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, metrics: Metrics, _slot: OwnedSemaphorePermit) {
    let service = service_fn(|request: Request<Incoming>| {
        let response = respond(request.method(), request.uri().path(), &metrics);
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_DEADLINE)
        .max_header_size(REQUEST_HEAD_LIMIT)
        .keep_alive(false)
        // A client may shut down its sending side once its request is out.
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_DEADLINE, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "metrics request failed"),
        Err(_elapsed) => tracing::debug!("metrics connection closed after {CONNECTION_DEADLINE:?}"),
    }
}

/// `GET /metrics`: the rendered registry; `GET /`: a pointer to it; other paths 404, other
/// methods 405. hyper leaves the body out of the answer to a HEAD.
fn respond(method: &Method, path: &str, metrics: &Metrics) -> Response<String> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/metrics" => {
            let mut response = Response::new(metrics.render());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
            );
            response
        }
        "/" => text(StatusCode::OK, "pond metrics: GET /metrics\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<String> {
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, Shutdown, TcpStream};

    use super::*;

    fn serve_test_metrics() -> (Metrics, MetricsServer) {
        let metrics = Metrics::new();
        metrics
            .counter("requests_total", "Requests.", &[])
            .inc_by(3);
        let server = metrics
            .serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("bind 127.0.0.1:0");
        (metrics, server)
    }

    /// Sends `request`, ends the write side, and returns everything the server answered.
    fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        // A hung server fails the test instead of hanging it.
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(request)?;
        stream.shutdown(Shutdown::Write)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    }

    /// A response split into its status line, its headers (names lowercased, in order) and its
    /// body.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        status: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Parsed {
        fn new(response: &str) -> Self {
            let (head, body) = response
                .split_once("\r\n\r\n")
                .expect("a blank line after the head");
            let mut lines = head.split("\r\n");
            let status = lines.next().unwrap_or_default().to_owned();
            let headers = lines
                .map(|line| {
                    let (name, value) = line.split_once(": ").expect("a header line");
                    (name.to_ascii_lowercase(), value.to_owned())
                })
                .collect();
            Parsed {
                status,
                headers,
                body: body.to_owned(),
            }
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// The headers other than `date`, which changes every second.
        fn stable_headers(&self) -> Vec<(&str, &str)> {
            self.headers
                .iter()
                .filter(|(name, _)| name != "date")
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect()
        }
    }

    fn get(addr: SocketAddr, path: &str) -> Parsed {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
        Parsed::new(&exchange(addr, request.as_bytes()).expect("request"))
    }

    #[test]
    fn get_metrics_answers_200_with_the_rendered_registry() {
        let (metrics, server) = serve_test_metrics();
        let body =
            "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total 3\n";
        let response = get(server.local_addr(), "/metrics");
        assert_eq!(response.status, "HTTP/1.1 200 OK");
        assert_eq!(
            response.stable_headers(),
            [
                ("content-type", "text/plain; version=0.0.4; charset=utf-8"),
                ("connection", "close"),
                ("content-length", body.len().to_string().as_str()),
            ]
        );
        assert_eq!(response.body, body);

        // Each scrape renders anew.
        metrics.counter("requests_total", "Requests.", &[]).inc();
        let response = get(server.local_addr(), "/metrics?x=1");
        assert!(
            response.body.ends_with("requests_total 4\n"),
            "{response:?}"
        );
    }

    #[test]
    fn other_paths_and_methods_get_pointer_404_405() {
        let (_metrics, server) = serve_test_metrics();
        let addr = server.local_addr();
        let text = |status: &str, body: &str, allow: bool| {
            let length = body.len().to_string();
            let mut headers = vec![("content-type", "text/plain; charset=utf-8")];
            if allow {
                headers.push(("allow", "GET, HEAD"));
            }
            headers.extend([("connection", "close"), ("content-length", length.as_str())]);
            (
                status.to_owned(),
                headers
                    .iter()
                    .map(|&(n, v)| (n.to_owned(), v.to_owned()))
                    .collect::<Vec<_>>(),
                body.to_owned(),
            )
        };
        let parts = |r: Parsed| {
            let headers = r
                .stable_headers()
                .iter()
                .map(|&(n, v)| (n.to_owned(), v.to_owned()))
                .collect::<Vec<_>>();
            (r.status, headers, r.body)
        };
        assert_eq!(
            parts(get(addr, "/")),
            text("HTTP/1.1 200 OK", "pond metrics: GET /metrics\n", false)
        );
        assert_eq!(
            parts(get(addr, "/nope")),
            text("HTTP/1.1 404 Not Found", "not found\n", false)
        );
        let post = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            parts(Parsed::new(&post.expect("POST"))),
            text(
                "HTTP/1.1 405 Method Not Allowed",
                "method not allowed\n",
                true
            )
        );
        let head = Parsed::new(&exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").expect("HEAD"));
        assert_eq!(head.status, "HTTP/1.1 200 OK");
        assert_eq!(
            head.header("content-type"),
            Some(prometheus_text::CONTENT_TYPE)
        );
        assert_eq!(head.body, "");
    }

    #[test]
    fn garbage_requests_do_not_stop_the_server() {
        let (_metrics, server) = serve_test_metrics();
        let addr = server.local_addr();
        for garbage in [
            &b"\x00\xff\xfe garbage\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"no blank line, then end of stream",
        ] {
            let response = exchange(addr, garbage).expect("garbage request");
            assert!(
                response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{garbage:?}: {response}"
            );
        }
        // Blank lines before a request are skipped; a head cut short by the end of the stream
        // gets no answer.
        for unfinished in [&b"\r\n\r\n"[..], b"GET /metrics HTTP/1.1\r\nHost: x"] {
            let response = exchange(addr, unfinished).expect("unfinished head");
            assert_eq!(response, "", "{unfinished:?}");
        }
        // A target that is not a path is no page of ours; an absolute URL is read for its path.
        let not_a_path = exchange(addr, b"GET metrics HTTP/1.1\r\n\r\n").expect("GET metrics");
        assert_eq!(Parsed::new(&not_a_path).status, "HTTP/1.1 404 Not Found");
        let absolute = exchange(addr, b"GET http://x/metrics HTTP/1.1\r\n\r\n").expect("GET URL");
        assert!(Parsed::new(&absolute).body.ends_with("requests_total 3\n"));
        // Connecting and leaving without a word.
        drop(TcpStream::connect(addr).expect("connect"));
        // A head over the limit is refused; the server closes with unread input, so the client may
        // see a reset instead of the 431.
        let mut too_large = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        too_large.resize(3 * REQUEST_HEAD_LIMIT, b'a');
        if let Ok(response) = exchange(addr, &too_large) {
            assert!(
                response.is_empty()
                    || response.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
                "{response}"
            );
        }
        assert!(get(addr, "/metrics").body.ends_with("requests_total 3\n"));
    }

    #[test]
    fn a_client_that_sends_nothing_is_dropped_after_the_request_deadline() {
        let (_metrics, server) = serve_test_metrics();
        let mut idle = TcpStream::connect(server.local_addr()).expect("connect");
        idle.set_read_timeout(Some(REQUEST_DEADLINE * 5))
            .expect("read timeout");
        let mut answer = Vec::new();
        // A timed-out read is an error, so reaching the end of the stream is the server closing.
        idle.read_to_end(&mut answer).expect("closed by the server");
        // Meanwhile, others are served.
        assert!(
            get(server.local_addr(), "/metrics")
                .body
                .ends_with("requests_total 3\n")
        );
    }

    #[test]
    fn dropping_the_server_stops_serving() {
        let (_metrics, server) = serve_test_metrics();
        let addr = server.local_addr();
        assert_eq!(get(addr, "/metrics").status, "HTTP/1.1 200 OK");
        drop(server);
        let after = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        assert!(after.is_err(), "still accepting on {addr} after drop");
    }

    #[test]
    fn a_wildcard_bind_serves_loopback_and_stops_on_drop() {
        let metrics = Metrics::new();
        let server = metrics
            .serve(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            .expect("bind 0.0.0.0:0");
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, server.local_addr().port()));
        assert_eq!(get(loopback, "/metrics").status, "HTTP/1.1 200 OK");
        drop(server);
        assert!(TcpStream::connect_timeout(&loopback, Duration::from_secs(2)).is_err());
    }

    #[test]
    fn a_taken_address_is_a_bind_error_naming_it() {
        let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let addr = taken.local_addr().expect("local addr");
        let error = Metrics::new().serve(addr).expect_err("address in use");
        assert!(
            matches!(&error, MetricsError::Bind { addr: a, source } if *a == addr
            && source.kind() == io::ErrorKind::AddrInUse)
        );
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("metrics address {addr}: Address already in use")),
            "{message}"
        );
    }
}
