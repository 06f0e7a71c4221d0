//! The `/metrics` endpoint: a minimal HTTP/1.1 responder on one background thread.
//!
//! The thread accepts one connection at a time, reads the request head (at most
//! [`REQUEST_HEAD_LIMIT`] bytes within [`REQUEST_DEADLINE`]), answers from the request line only
//! and closes the connection. That is all a Prometheus scraper or `curl` needs, and a misbehaving
//! client can hold the thread for a bounded time at most; whatever it sends, the worst outcome is
//! a 400 and a closed socket.
//!
//! [`MetricsServer`] owns the thread. Dropping it raises a stop flag and connects to the listener
//! itself so that the blocked `accept` returns, sees the flag and ends the loop; then it joins.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::Metrics;

/// Largest request head (request line plus headers) read before answering 400.
const REQUEST_HEAD_LIMIT: usize = 8 * 1024;
/// Time a client gets to send its whole request head.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Time a single write of the response may block on a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Time the shutdown connection may take; the listener is local, so this only guards oddities.
const WAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (such as running out of file descriptors) so a persistent
/// error does not spin a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
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
    stop: Arc<AtomicBool>,
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
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        if !thread.is_finished()
            && let Err(error) =
                TcpStream::connect_timeout(&wake_addr(self.local_addr), WAKE_TIMEOUT)
        {
            // Joining now could block on `accept` forever; the thread ends at its next connection.
            tracing::warn!(addr = %self.local_addr, %error, "could not wake the metrics server to stop it");
            return;
        }
        if thread.join().is_err() {
            tracing::error!(addr = %self.local_addr, "the metrics server thread panicked");
        }
    }
}

pub(crate) fn serve(metrics: Metrics, addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
    let listener = TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = thread::Builder::new()
        .name("pond-metrics".to_owned())
        .spawn({
            let stop = Arc::clone(&stop);
            move || accept_loop(&listener, &metrics, &stop)
        })
        .map_err(|source| MetricsError::Spawn {
            addr: local_addr,
            source,
        })?;
    tracing::debug!(addr = %local_addr, "serving metrics");
    Ok(MetricsServer {
        local_addr,
        stop,
        thread: Some(thread),
    })
}

fn accept_loop(listener: &TcpListener, metrics: &Metrics, stop: &AtomicBool) {
    for connection in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match connection {
            Ok(stream) => {
                if let Err(error) = handle(stream, metrics) {
                    tracing::debug!(%error, "metrics request failed");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a metrics connection");
                thread::sleep(ACCEPT_ERROR_PAUSE);
            }
        }
    }
}

/// Where to connect to reach our own listener: a wildcard bind is reached through loopback.
fn wake_addr(local: SocketAddr) -> SocketAddr {
    let mut addr = local;
    if addr.ip().is_unspecified() {
        addr.set_ip(match local {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

fn handle(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let response = match read_head(&mut stream)? {
        RequestHead::Empty => return Ok(()),
        RequestHead::TooLarge => Response::text("400 Bad Request", "request head too large\n"),
        RequestHead::Received(head) => respond(&head, metrics),
    };
    stream.write_all(&response.into_bytes())?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

enum RequestHead {
    /// The client closed the connection without sending anything.
    Empty,
    TooLarge,
    /// Everything up to the blank line ending the headers, or up to the client's end of stream.
    Received(Vec<u8>),
}

fn read_head(stream: &mut TcpStream) -> io::Result<RequestHead> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut head = Vec::new();
    let mut chunk = [0_u8; 1024];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not received in time",
            ));
        }
        stream.set_read_timeout(Some(remaining))?;
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(if head.is_empty() {
                RequestHead::Empty
            } else {
                RequestHead::Received(head)
            });
        }
        head.extend_from_slice(&chunk[..read]);
        if ends_headers(&head) {
            return Ok(RequestHead::Received(head));
        }
        if head.len() > REQUEST_HEAD_LIMIT {
            return Ok(RequestHead::TooLarge);
        }
    }
}

fn ends_headers(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

fn respond(head: &[u8], metrics: &Metrics) -> Response {
    let line_end = head
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(head.len());
    let request_line =
        std::str::from_utf8(&head[..line_end]).map(|line| line.trim_end_matches('\r'));
    let Ok(mut parts) = request_line.map(|line| line.split(' ')) else {
        return Response::text("400 Bad Request", "bad request\n");
    };
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::text("400 Bad Request", "bad request\n");
    };
    if !version.starts_with("HTTP/") || !target.starts_with('/') {
        return Response::text("400 Bad Request", "bad request\n");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut response = Response::text("405 Method Not Allowed", "method not allowed\n");
            response.allow = true;
            return response;
        }
    };
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    let mut response = match path {
        "/metrics" => Response {
            status: "200 OK",
            content_type: METRICS_CONTENT_TYPE,
            allow: false,
            body: metrics.render(),
            head_only: false,
        },
        "/" => Response::text("200 OK", "pond metrics: GET /metrics\n"),
        _ => Response::text("404 Not Found", "not found\n"),
    };
    response.head_only = head_only;
    response
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    /// Adds `Allow: GET, HEAD` (for 405).
    allow: bool,
    body: String,
    /// A HEAD request: the headers of the GET response, no body.
    head_only: bool,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Self {
        Response {
            status,
            content_type: TEXT_CONTENT_TYPE,
            allow: false,
            body: body.to_owned(),
            head_only: false,
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let allow = if self.allow {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let mut bytes = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len(),
        )
        .into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

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
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        // A hung server fails the test instead of hanging it.
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(request)?;
        stream.shutdown(Shutdown::Write)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
        exchange(addr, request.as_bytes()).expect("request")
    }

    #[test]
    fn get_metrics_answers_200_with_the_rendered_registry() {
        let (metrics, server) = serve_test_metrics();
        let body =
            "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total 3\n";
        let expected = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(get(server.local_addr(), "/metrics"), expected);

        // Each scrape renders anew.
        metrics.counter("requests_total", "Requests.", &[]).inc();
        let response = get(server.local_addr(), "/metrics?x=1");
        assert!(response.ends_with("requests_total 4\n"), "{response}");
    }

    #[test]
    fn other_paths_and_methods_get_pointer_404_405() {
        let (_metrics, server) = serve_test_metrics();
        let addr = server.local_addr();
        assert_eq!(
            get(addr, "/"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 27\r\n\
             Connection: close\r\n\r\npond metrics: GET /metrics\n"
        );
        assert_eq!(
            get(addr, "/nope"),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 10\r\nConnection: close\r\n\r\nnot found\n"
        );
        let post = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            post.expect("POST"),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 19\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\nmethod not allowed\n"
        );
        let head = exchange(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n").expect("HEAD");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
    }

    #[test]
    fn garbage_requests_do_not_stop_the_server() {
        let (_metrics, server) = serve_test_metrics();
        let addr = server.local_addr();
        let bad_request = "HTTP/1.1 400 Bad Request\r\n";
        for garbage in [
            &b"\x00\xff\xfe garbage\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"\r\n\r\n",
            b"no blank line, then end of stream",
        ] {
            let response = exchange(addr, garbage).expect("garbage request");
            assert!(response.starts_with(bad_request), "{garbage:?}: {response}");
        }
        // Connecting and leaving without a word.
        drop(TcpStream::connect(addr).expect("connect"));
        // A head over the limit is refused; the server closes with unread input, so the client may
        // see a reset instead of the 400.
        if let Ok(response) = exchange(addr, &[b'a'; 3 * REQUEST_HEAD_LIMIT]) {
            assert!(
                response.is_empty() || response.starts_with(bad_request),
                "{response}"
            );
        }
        assert!(get(addr, "/metrics").ends_with("requests_total 3\n"));
    }

    #[test]
    fn dropping_the_server_stops_serving() {
        let (_metrics, server) = serve_test_metrics();
        let addr = server.local_addr();
        assert!(get(addr, "/metrics").starts_with("HTTP/1.1 200 OK"));
        drop(server);
        let after = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        assert!(after.is_err(), "still accepting on {addr} after drop");
    }

    #[test]
    fn a_wildcard_bind_is_stopped_through_loopback() {
        let metrics = Metrics::new();
        let server = metrics
            .serve(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
            .expect("bind 0.0.0.0:0");
        let port = server.local_addr().port();
        assert_eq!(
            wake_addr(server.local_addr()),
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        );
        drop(server);
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert!(TcpStream::connect_timeout(&loopback, Duration::from_secs(2)).is_err());
    }

    #[test]
    fn a_taken_address_is_a_bind_error_naming_it() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
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
