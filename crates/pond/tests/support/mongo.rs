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
    /// More `secantusd-py` flags for the next start (`--auth`).
    flags: std::sync::Mutex<String>,
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
            flags: std::sync::Mutex::new(String::new()),
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
            "( {bin} --port {port} --storage-path '{storage}' --enable-test-commands {flags} >>'{log}' 2>&1 & \
             child=$!; echo $child > '{pid}'; \
             while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
             kill $child 2>/dev/null ) &",
            bin = binary.display(),
            flags = self.flags.lock().unwrap_or_else(|e| e.into_inner()),
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

    /// Starts the server again with `flags` added (`--auth`).
    pub fn restart_with(&self, flags: &str) {
        *self.flags.lock().unwrap_or_else(|e| e.into_inner()) = flags.to_string();
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

// ---------------------------------------------------------------------------------------------
// Helpers for tests/mongo*.rs: fail points, a logfile -> mongo pipeline, Hyperliquid-shaped lines.

impl Server {
    /// The collection names of `db`, sorted.
    pub fn collections(&self, db: &str) -> Vec<String> {
        let client = self.client();
        let mut names = block_on(client.database(db).list_collection_names()).unwrap();
        names.sort();
        names
    }

    /// Arms the server-wide `failCommand` fail point (replacing any other) with `mode` and `data`.
    pub fn fail_point(&self, mode: mongodb::bson::Bson, data: Document) {
        self.admin(doc! { "configureFailPoint": "failCommand", "mode": mode, "data": data });
    }

    /// Disarms the `failCommand` fail point.
    pub fn fail_point_off(&self) {
        self.admin(doc! { "configureFailPoint": "failCommand", "mode": "off" });
    }
}

/// The logfile node of a [`Pipeline`].
pub const LOGFILE_NODE: &str = "/etc/hl";
/// The mongo node of a [`Pipeline`].
pub const MONGO_NODE: &str = "/etc/to-mongo";
/// The collection a [`Pipeline`] writes to.
pub const COLLECTION: &str = "docs";

/// Runs `cmd` with stdout and stderr captured; kills it and panics when it is still running
/// after `limit` (a hung `pond` fails its test instead of hanging the suite).
pub fn run_bounded(mut cmd: Command, limit: Duration) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let run = super::kill_child_after(cmd.spawn().unwrap(), limit);
    assert!(
        run.finished_after.is_some(),
        "{cmd:?} was still running after {limit:?} (hung?) and was killed; stderr: {}",
        String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default())
    );
    std::process::Output {
        status: run.status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// The config of the [`LOGFILE_NODE`] of a [`Pipeline`]: `host/hourly/*/*` of `pond`, mirrored
/// under `/logs/hl`; `extra` (YAML lines) follows.
pub fn hl_logfile_config(pond: &super::TestPond, extra: &str) -> String {
    super::logs::logfile_config(
        "hl",
        &format!("{}/hourly/*/*", pond.host.display()),
        "logs/hl",
        extra,
    )
}

/// A pond with a `logfile` node over `host/hourly/*/*` (mirrored under `/logs/hl`), usually
/// chained to a `mongo` node with source `logs/hl/**` writing to `COLLECTION` of its own
/// database. Every `pond` it runs through [`Pipeline::run`] (syncs, status) is bounded by `limit`.
pub struct Pipeline<'a> {
    pub pond: super::TestPond,
    pub server: &'a Server,
    pub db: String,
    pub limit: Duration,
}

impl<'a> Pipeline<'a> {
    /// A chained pipeline into `server` with `format`; `extra` is appended to the mongo config.
    pub fn new(server: &'a Server, test: &str, format: &str, extra: &str) -> Self {
        Self::build(server, test, &server.uri, format, extra, true)
    }

    /// Like [`Pipeline::new`], with the connection string `uri` (e.g. with an `appName`).
    pub fn with_uri(server: &'a Server, test: &str, uri: &str, format: &str, extra: &str) -> Self {
        Self::build(server, test, uri, format, extra, true)
    }

    /// Like [`Pipeline::new`], but the logfile node has no downstream: [`Pipeline::mirror`]
    /// only mirrors, and the mongo node runs when the test says so.
    pub fn unchained(server: &'a Server, test: &str, format: &str, extra: &str) -> Self {
        Self::build(server, test, &server.uri, format, extra, false)
    }

    fn build(
        server: &'a Server,
        test: &str,
        uri: &str,
        format: &str,
        extra: &str,
        chained: bool,
    ) -> Self {
        let pond = super::TestPond::new();
        let db = database(test);
        let this = Self {
            pond,
            server,
            db,
            limit: Duration::from_secs(60),
        };
        this.pond.install(
            "mongo",
            MONGO_NODE,
            &format!(
                "source: \"logs/hl/**\"\nmongodb:\n  uri: \"{uri}\"\n  database: {}\n  collection: {COLLECTION}\nformat: {format}\n{extra}",
                this.db
            ),
        );
        this.set_logfile(chained, false);
        this
    }

    /// (Re)writes the logfile node's config, with or without the mongo node downstream.
    pub fn set_logfile(&self, chained: bool, overwrite: bool) {
        let downstream = if chained {
            format!("downstream: [{MONGO_NODE}]\n")
        } else {
            String::new()
        };
        let config = hl_logfile_config(&self.pond, &downstream);
        if overwrite {
            self.pond.reinstall("logfile", LOGFILE_NODE, &config);
        } else {
            self.pond.install("logfile", LOGFILE_NODE, &config);
        }
    }

    /// Runs `pond ARGS` (bounded by `limit`), whatever the exit status.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        run_bounded(self.pond.cmd(args), self.limit)
    }

    /// Runs `pond ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        super::succeeded(args, self.run(args))
    }

    /// Runs `pond ARGS --json`, asserts success, parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let text = self.ok(&with_json);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Writes host file `hourly/NAME` (mirrored as `/logs/hl/NAME`).
    pub fn write(&self, name: &str, bytes: &[u8]) {
        self.pond.host_file(&format!("hourly/{name}"), bytes);
    }

    /// Appends to host file `hourly/NAME`, creating it when missing.
    pub fn append(&self, name: &str, bytes: &[u8]) {
        self.pond.append_host(&format!("hourly/{name}"), bytes);
    }

    /// `pond run LOGFILE_NODE sync --json` of a chained pipeline: asserts the chain succeeded;
    /// returns the mongo stage's report.
    pub fn sync(&self) -> serde_json::Value {
        let report = self.json(&["run", LOGFILE_NODE, "sync"]);
        let stage = &report["downstream"][0];
        assert_eq!(stage["path"], MONGO_NODE, "{report}");
        assert_eq!(stage["ok"], true, "mongo stage failed: {report}");
        stage["report"].clone()
    }

    /// `pond run LOGFILE_NODE sync --json` (asserts success).
    pub fn mirror(&self) -> serde_json::Value {
        self.json(&["run", LOGFILE_NODE, "sync"])
    }

    /// `pond run MONGO_NODE sync --json` (asserts success).
    pub fn mongo_sync(&self) -> serde_json::Value {
        self.json(&["run", MONGO_NODE, "sync"])
    }

    /// `pond run MONGO_NODE status --json`: `{files: [{path, size, cursor, lag, last_error}]}`.
    pub fn status(&self) -> serde_json::Value {
        self.json(&["run", MONGO_NODE, "status"])
    }

    /// The status row of pond file `path`.
    pub fn file_status(&self, path: &str) -> serde_json::Value {
        let status = self.status();
        status["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} not in status: {status}"))
            .clone()
    }

    /// Documents in `COLLECTION`.
    pub fn count(&self) -> u64 {
        self.server.count(&self.db, COLLECTION)
    }

    /// Every document of `COLLECTION`, sorted by `_id`.
    pub fn docs(&self) -> Vec<Document> {
        self.server.docs(&self.db, COLLECTION)
    }

    /// Every document of collection `coll` of this pipeline's database.
    pub fn docs_of(&self, coll: &str) -> Vec<Document> {
        self.server.docs(&self.db, coll)
    }
}

/// Sample lines of the Hyperliquid node's `node_trades` files (`testdata/samples/`): three
/// mid-2025 lines (nanosecond `time`) and one 2024-era line (millisecond `time`).
pub const SAMPLE_TRADES: [&str; 4] = [
    r#"{"coin":"@151","side":"A","time":"2025-06-24T02:56:36.172847427","px":"2393.9","sz":"0.1539","hash":"0x2b21750229be769650b604261eaac1018c00c45812652efbbdd35fe0ecb201a1","trade_dir_override":"Na","side_info":[{"user":"0xecb63caa47c7c4e77f60f1ce858cf28dc2b82b00","start_pos":"1166.565307356","oid":105686971733,"twap_id":null,"cloid":"0x1070fff92506b3ab5e5aec135e5a5ddd"},{"user":"0xb65117c1e1006e7b2413fa90e96fcbe3fa83ed75","start_pos":"0.153928559","oid":105686976226,"twap_id":null,"cloid":null}]}"#,
    r#"{"coin":"HYPE","side":"B","time":"2025-06-24T02:56:36.241836440","px":"36.773","sz":"0.74","hash":"0xbc8b4f281951cd10af1704261eaac201910053453aba82fd6f64e9ad5cc3eab8","trade_dir_override":"Na","side_info":[{"user":"0xc2d25de009756d3e2ff8a69fd68a02dd7679a8a2","start_pos":"1.25","oid":105686976375,"twap_id":null,"cloid":null},{"user":"0xaf2ac71f62f341e5823d6985492409e92c940447","start_pos":"100.0","oid":105686976012,"twap_id":null,"cloid":"0x000000000000cba600002935c6911dbf"}]}"#,
    r#"{"coin":"ETH","side":"A","time":"2025-06-24T02:56:37.026660548","px":"2391.9","sz":"0.0051","hash":"0x0000000000000000000000000000000000000000000000000000000000000000","trade_dir_override":"Na","side_info":[{"user":"0x31ca8395cf837de08b24da3f660e77761dfb974b","start_pos":"14.2048","oid":105686950111,"twap_id":null,"cloid":null},{"user":"0x937791d5ab5040402370f1fc0d9f8f014d80e90e","start_pos":"-2.6603","oid":105686977630,"twap_id":822427,"cloid":null}]}"#,
    r#"{"coin":"ZK","side":"B","time":"2024-09-19T10:00:02.015","px":"0.12398","sz":"158.0","hash":"0x47c078ffd46e96d69c5d040fe44603012500707c9f0e8e9c3f432f78494532bc","trade_dir_override":"Na","side_info":[{"user":"0xc64cc00b46101bd40aa1c3121195e85c0b0918d8","start_pos":"1680951.0","oid":14849962333,"twap_id":null,"cloid":null},{"user":"0x768484f7e2ebb675c57838366c02ae99ba2a9b08","start_pos":"-2074344.0","oid":14849962111,"twap_id":null,"cloid":null}]}"#,
];

/// Sample lines of `node_fills_by_block` files (`testdata/samples/`): a block with a header and
/// one fill, and a header-less block with both fills of one trade (same `tid`).
pub const SAMPLE_FILL_BLOCKS: [&str; 2] = [
    r#"{"local_time":"2026-06-28T08:43:53.687645997","block_time":"2026-06-28T08:43:53.257028820","block_number":1052527672,"events":[["0xa775d1bd91ee2cc4cae6113e5fd9c0c17b355277",{"coin":"SOL","px":"72.153","sz":"0.58","side":"A","time":1782636233257,"startPosition":"-162.6","dir":"Open Short","closedPnl":"0.0","hash":"0xdc25d330b40799afdd9f043ebc4c38000060eb164f0ab8817fee7e83730b739a","oid":481702553903,"crossed":false,"fee":"-0.001255","tid":340554939716632,"cloid":"0x00000000000000000000019f08a8bdd8","liquidation":{"liquidatedUser":"0x5ef843ccf26810073ee689a954f6d05f5b48fccb","markPx":"72.149","method":"market"},"feeToken":"USDC","twapId":null}]]}"#,
    r#"{"events":[["0x2e434472e65249f6b8eb3bb5d240f0682c1c7a9f",{"coin":"@142","px":"115865.0","sz":"0.0001","side":"B","time":1754017199857,"startPosition":"0.0906573601","dir":"Buy","closedPnl":"0.0","hash":"0xb2d9","oid":124639075240,"crossed":true,"fee":"0.0000000594","tid":343451763467020,"feeToken":"UBTC"}],["0x3c516f085e94177eaf0bdfb5b5eb1ab71052d064",{"coin":"@142","px":"115865.0","sz":"0.0001","side":"A","time":1754017199857,"startPosition":"0.0161384162","dir":"Sell","closedPnl":"-0.00701348","hash":"0xb2d9","oid":124638539336,"crossed":false,"fee":"0.00278076","tid":343451763467020,"feeToken":"USDC"}]]}"#,
];

/// Trade line number `i` built from [`SAMPLE_TRADES`]: every `i` has its own `time` (so its own
/// natural key), `oid`s and `sz`.
pub fn trade_line(i: u64) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(SAMPLE_TRADES[(i % 4) as usize]).unwrap();
    let time = if i % 4 == 3 {
        // The 2024-era shape: millisecond precision.
        format!(
            "2024-09-19T10:{:02}:{:02}.{:03}",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000
        )
    } else {
        let ns = i * 1_000_037;
        format!(
            "2025-06-24T03:{:02}:{:02}.{:09}",
            (ns / 60_000_000_000) % 60,
            (ns / 1_000_000_000) % 60,
            ns % 1_000_000_000
        )
    };
    value["time"] = time.into();
    value["sz"] = format!("{}.{:03}", 1 + i % 97, i % 1000).into();
    for side in value["side_info"].as_array_mut().unwrap() {
        side["oid"] = (side["oid"].as_u64().unwrap() + i).into();
    }
    serde_json::to_string(&value).unwrap()
}

/// `n` trade lines starting at number `first`, each ending in a newline.
pub fn trade_lines(first: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in first..first + n {
        out.extend_from_slice(trade_line(i).as_bytes());
        out.push(b'\n');
    }
    out
}

/// Epoch nanoseconds of `YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM|-HH:MM]` (no zone: UTC), for
/// years from 1970. Written independently of the factory's parser: days are counted year by
/// year and month by month.
pub fn epoch_ns(text: &str) -> i128 {
    let num = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| panic!("bad time {text:?}")) };
    let (year, month, day) = (num(&text[0..4]), num(&text[5..7]), num(&text[8..10]));
    let rest = &text[11..];
    let (clock, zone_secs) = if let Some(clock) = rest.strip_suffix('Z') {
        (clock, 0)
    } else if rest.len() >= 14 && matches!(rest.as_bytes()[rest.len() - 6], b'+' | b'-') {
        let (clock, zone) = rest.split_at(rest.len() - 6);
        let secs = num(&zone[1..3]) * 3600 + num(&zone[4..6]) * 60;
        (clock, if zone.starts_with('-') { -secs } else { secs })
    } else {
        (rest, 0)
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let (hour, minute, second) = (num(&hms[0..2]), num(&hms[3..5]), num(&hms[6..8]));
    let nanos = if fraction.is_empty() {
        0
    } else {
        num(&format!("{fraction:0<9}"))
    };
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = |y: i64, m: i64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let days: i64 = (1970..year)
        .map(|y| if leap(y) { 366 } else { 365 })
        .sum::<i64>()
        + (1..month).map(|m| month_days(year, m)).sum::<i64>()
        + day
        - 1;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - zone_secs;
    i128::from(secs) * 1_000_000_000 + i128::from(nanos)
}

/// `time_ns` of trade line `i` ([`trade_line`]): the entry's own time.
pub fn trade_time_ns(i: u64) -> i64 {
    let value: serde_json::Value = serde_json::from_str(&trade_line(i)).unwrap();
    epoch_ns(value["time"].as_str().unwrap()) as i64
}

impl Pipeline<'_> {
    /// Asserts `COLLECTION` holds exactly one document per trade line `0..n` ([`trade_line`]):
    /// no line missing, none twice, nothing else.
    #[track_caller]
    pub fn assert_trades_exact(&self, n: u64, context: &str) {
        let stored: Vec<i64> = self
            .docs()
            .iter()
            .map(|d| d.get_i64("time_ns").unwrap())
            .collect();
        let stored_set: std::collections::BTreeSet<i64> = stored.iter().copied().collect();
        assert_eq!(
            stored.len(),
            stored_set.len(),
            "{context}: two documents for one line"
        );
        let expected: std::collections::BTreeSet<i64> = (0..n).map(trade_time_ns).collect();
        let missing = expected.difference(&stored_set).count();
        let unexpected = stored_set.difference(&expected).count();
        assert!(
            missing == 0 && unexpected == 0,
            "{context}: {} documents for {n} lines: {missing} missing, {unexpected} unexpected",
            stored.len()
        );
    }
}

impl Server {
    /// Stops the server like [`Server::stop`], but repeats the SIGTERM every second until the
    /// port closes, then waits for the process to exit (so that [`Server::restart`] finds its
    /// storage free). SecantusDB runs signal handlers on its main thread, which waits in a way a
    /// signal delivered to another thread does not interrupt: under load (the kernel picks a
    /// busy connection thread) a single SIGTERM can go unnoticed indefinitely.
    pub fn shutdown(&self) {
        let pid = std::fs::read_to_string(self.pid_file()).unwrap();
        let pid = pid.trim();
        let started = Instant::now();
        let mut signalled: Option<Instant> = None;
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            if signalled.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                let _ = Command::new("kill").arg(pid).status();
                signalled = Some(Instant::now());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        while Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server process did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
