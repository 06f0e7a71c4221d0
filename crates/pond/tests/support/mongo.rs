//! A local MongoDB-protocol server (SecantusDB) for tests.
//!
//! [`shared`] starts one server per test binary, on a free loopback port, with test commands
//! (fail points) enabled; each test uses its own database. [`Server::dedicated`] starts a private
//! one with on-disk storage, for tests that stop and restart the server. A watchdog shell ends
//! every server when the test process exits, however it exits. `make test` installs the server
//! into `.venv/`; `SECANTUSD` overrides its path.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use mongodb::bson::{Document, doc};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    pub port: u16,
    pub uri: String,
    dir: tempfile::TempDir,
    storage: String,
}

fn secantusd() -> PathBuf {
    if let Ok(path) = std::env::var("SECANTUSD") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/secantusd-py")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server shared by every test of this binary.
pub fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(":memory:"))
}

impl Server {
    /// A private server with on-disk storage (so it keeps its data across [`Server::restart`]).
    pub fn dedicated() -> Server {
        Server::start("")
    }

    fn start(storage: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let storage = if storage.is_empty() {
            dir.path().join("data").display().to_string()
        } else {
            storage.to_string()
        };
        let port = free_port();
        let server = Server {
            port,
            uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            dir,
            storage,
        };
        server.launch();
        server
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("server.pid")
    }

    fn launch(&self) {
        let binary = secantusd();
        assert!(
            binary.exists(),
            "{} not found: `make test` installs SecantusDB into .venv (or set SECANTUSD)",
            binary.display()
        );
        // The watchdog stops the server when this test process is gone, even after SIGKILL.
        // The outer shell returns at once; the watchdog subshell lives on in the background.
        let script = format!(
            "( {bin} --port {port} --storage-path '{storage}' --enable-test-commands >>'{log}' 2>&1 & \
             child=$!; echo $child > '{pid}'; \
             while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
             kill $child 2>/dev/null ) &",
            bin = binary.display(),
            port = self.port,
            storage = self.storage,
            log = self.dir.path().join("server.log").display(),
            pid = self.pid_file().display(),
            parent = std::process::id(),
        );
        let _ = std::fs::remove_file(self.pid_file());
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "SecantusDB did not start on port {}: {}",
                self.port,
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (SIGTERM) and waits until its port is closed.
    pub fn stop(&self) {
        let pid = std::fs::read_to_string(self.pid_file()).unwrap();
        let _ = Command::new("kill").arg(pid.trim()).status();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the server again on the same port and storage.
    pub fn restart(&self) {
        self.launch();
    }

    /// A client for checking what the server holds.
    pub fn client(&self) -> mongodb::Client {
        block_on(mongodb::Client::with_uri_str(&self.uri)).unwrap()
    }

    /// Number of documents in `db.coll`.
    pub fn count(&self, db: &str, coll: &str) -> u64 {
        let client = self.client();
        block_on(
            client
                .database(db)
                .collection::<Document>(coll)
                .count_documents(doc! {}),
        )
        .unwrap()
    }

    /// Every document of `db.coll`, sorted by `_id`.
    pub fn docs(&self, db: &str, coll: &str) -> Vec<Document> {
        let client = self.client();
        block_on(async {
            use futures_util::TryStreamExt;
            client
                .database(db)
                .collection::<Document>(coll)
                .find(doc! {})
                .sort(doc! { "_id": 1 })
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .unwrap()
    }

    /// Runs an admin command (fail points).
    pub fn admin(&self, command: Document) -> Document {
        let client = self.client();
        block_on(client.database("admin").run_command(command)).unwrap()
    }
}

/// Runs a future on a runtime shared by the test binary.
pub fn block_on<F: std::future::IntoFuture>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
        })
        .block_on(future.into_future())
}

/// A database name unique to one test.
pub fn database(test: &str) -> String {
    let mut name: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    name.truncate(40);
    format!("t_{name}_{}", std::process::id())
}
