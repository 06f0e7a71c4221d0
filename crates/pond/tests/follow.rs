//! `pond run NODE follow` end to end: host files written while `follow` runs reach MongoDB
//! through `logfile` and `mongo` exactly once, across new hour files and day directories,
//! rotation, SIGTERM, SIGKILL, a server outage and a config reload; the metrics endpoint serves
//! the documented series.
//!
//! Every test waits on outcomes (documents stored, bytes mirrored) with a generous bound, never
//! on fixed sleeps. The reconcile scan is set to 60 s, so pickups within the bound come from
//! change events. Needs SecantusDB like `mongo.rs` (`make test` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::logs::logfile_config;
use support::mongo::{
    self, COLLECTION, LOGFILE_NODE, MONGO_NODE, Pipeline, Server, hl_logfile_config, trade_lines,
};
use support::{SplitMix64, TestPond};

/// How long any one expected outcome may take.
const BOUND: Duration = Duration::from_secs(30);

/// A running `pond run LOGFILE_NODE follow`, killed if still running when dropped.
struct Follower {
    child: Child,
    /// Where `/metrics` is served.
    metrics: String,
    stderr_path: std::path::PathBuf,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Follower {
    fn start(pond: &TestPond) -> Follower {
        let stderr_path = pond.tmp.path().join(format!(
            "follow-{}.stderr",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut cmd = pond.cmd(&[
            "run",
            LOGFILE_NODE,
            "follow",
            "--metrics-addr",
            "127.0.0.1:0",
        ]);
        cmd.env("POND_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let metrics = first
            .split("metrics at http://")
            .nth(1)
            .and_then(|rest| rest.split("/metrics").next())
            .unwrap_or_else(|| {
                panic!(
                    "follow did not announce its metrics address: {first:?}; stderr: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            })
            .to_string();
        Follower {
            child,
            metrics,
            stderr_path,
            stdout,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends `signal` and waits (bounded) for the exit; returns (exit code, rest of stdout).
    fn signal_and_wait(mut self, signal: &str) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < BOUND,
                "follow did not exit after {signal}; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (status.code(), rest)
    }

    /// SIGTERM: asserts a clean exit (0, with the closing summary).
    fn stop(self) -> String {
        let stderr_path = self.stderr_path.clone();
        let (code, rest) = self.signal_and_wait("-TERM");
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        assert_eq!(code, Some(0), "follow exit after SIGTERM; stderr: {stderr}");
        assert!(rest.contains("stopped:"), "{rest}");
        stderr
    }

    /// One GET of `path` on the metrics server: (status line, body).
    fn get(&self, path: &str) -> (String, String) {
        let mut stream = std::net::TcpStream::connect(&self.metrics).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (
            head.lines().next().unwrap_or_default().to_string(),
            body.to_string(),
        )
    }

    /// The value of the series `name{labels}` (first match), from `/metrics`.
    fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done` holds, at most [`BOUND`].
#[track_caller]
fn wait_for(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < BOUND,
            "{what}: not reached within {BOUND:?}; {}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A chained pipeline whose logfile node reconciles only every 60 s (events drive it).
fn pipeline<'a>(server: &'a Server, test: &str) -> Pipeline<'a> {
    let pipeline = Pipeline::new(server, test, "hyperliquid/node_trades", "batch_size: 100\n");
    set_follow_config(&pipeline.pond, Some(MONGO_NODE), 2.0);
    pipeline
}

/// Writes the logfile node's config: the hourly layout, `follow:` tuned for tests (reconcile
/// every 60 s, so pickups come from events; compaction every `compact_interval` s).
fn set_follow_config(pond: &TestPond, downstream: Option<&str>, compact_interval: f64) {
    let downstream = downstream
        .map(|d| format!("downstream: [{d}]\n"))
        .unwrap_or_default();
    pond.reinstall(
        "logfile",
        LOGFILE_NODE,
        &hl_logfile_config(
            pond,
            &format!(
                "{downstream}follow:\n  rescan_interval: 60\n  compact_interval: {compact_interval}\n"
            ),
        ),
    );
}

/// Appends to host file `hourly/NAME` (mirrored as `/logs/hl/NAME`), creating it when missing.
fn append_host(pond: &TestPond, name: &str, bytes: &[u8]) {
    pond.append_host(&format!("hourly/{name}"), bytes);
}

/// Every mirrored file equals its host file byte for byte.
fn assert_mirrors_equal(pond: &TestPond, names: &[&str]) {
    for name in names {
        let host = std::fs::read(pond.host.join("hourly").join(name)).unwrap();
        pond.assert_cat_eq(
            &format!("/logs/hl/{name}"),
            &host,
            "mirror of its host file",
        );
    }
}

/// A new hour file, then a new day directory whose file is written right after the directory
/// is made (before any watch on it can exist): every line is stored once, by events alone.
#[test]
fn follow_picks_up_new_hour_files_and_new_day_directories() {
    let server = mongo::shared();
    let p = pipeline(server, "follow_new_files");
    append_host(&p.pond, "20250624/22", &trade_lines(0, 50));
    let follower = Follower::start(&p.pond);
    let count = || p.count();
    wait_for("first 50 lines", || count() == 50, || follower.stderr());
    append_host(&p.pond, "20250624/22", &trade_lines(50, 50));
    append_host(&p.pond, "20250624/23", &trade_lines(100, 50));
    append_host(&p.pond, "20250625/0", &trade_lines(150, 50));
    wait_for("all 200 lines", || count() == 200, || follower.stderr());
    p.assert_trades_exact(200, "after the new day directory");
    // A later append to the new day's file arrives through the watch added for the new directory.
    append_host(&p.pond, "20250625/0", &trade_lines(200, 25));
    wait_for("225 lines", || count() == 225, || follower.stderr());
    let stderr = follower.stop();
    p.assert_trades_exact(225, "after stop");
    assert_mirrors_equal(&p.pond, &["20250624/22", "20250624/23", "20250625/0"]);
    assert!(
        stderr.contains("new /logs/hl/20250625/0"),
        "the new file is logged: {stderr}"
    );
    let verify = p.pond.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

/// An active file rotated to a timestamped archive while `follow` runs: the archive keeps every
/// byte, the new active file is mirrored from its first byte.
#[test]
fn rotation_during_follow_keeps_every_byte() {
    let pond = TestPond::new();
    let host = pond.host.display().to_string();
    pond.reinstall(
        "logfile",
        LOGFILE_NODE,
        &logfile_config(
            "app",
            &format!("{host}/app.json"),
            "logs/app",
            &format!("archived_pattern: \"{host}/app-*.json\"\nfollow:\n  rescan_interval: 60\n"),
        ),
    );
    let active = pond.host.join("app.json");
    let archive = pond.host.join("app-2025-10-20T08-18-50.905.json");
    std::fs::write(&active, trade_lines(0, 30)).unwrap();
    let follower = Follower::start(&pond);
    let mirrored = |name: &str, want: &[u8]| {
        pond.output(&["cat", &format!("/logs/app/{name}")]).stdout == want
    };
    let first = trade_lines(0, 30);
    wait_for(
        "active mirrored",
        || mirrored("app.json", &first),
        || follower.stderr(),
    );
    // More lines, then rotation, then a new active file, faster than one step.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap();
    file.write_all(&trade_lines(30, 20)).unwrap();
    drop(file);
    std::fs::rename(&active, &archive).unwrap();
    std::fs::write(&active, trade_lines(50, 10)).unwrap();
    let archived = trade_lines(0, 50);
    let fresh = trade_lines(50, 10);
    wait_for(
        "rotation mirrored",
        || mirrored("app-2025-10-20T08-18-50.905.json", &archived) && mirrored("app.json", &fresh),
        || format!("{}\n{}", pond.ok(&["list", "/logs/app"]), follower.stderr()),
    );
    follower.stop();
    let verify = pond.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

/// Lines keep arriving; SIGTERM mid-stream: exit 0 after draining, the committed cursors cover
/// exactly the documents stored, and a restart stores the rest, each line once.
#[test]
fn sigterm_drains_and_commits_then_restart_is_exact() {
    let server = mongo::shared();
    let p = pipeline(server, "follow_sigterm");
    let follower = Follower::start(&p.pond);
    let mut written = 0u64;
    for _ in 0..20 {
        append_host(&p.pond, "20250624/1", &trade_lines(written, 100));
        written += 100;
        std::thread::sleep(Duration::from_millis(15));
    }
    follower.stop();
    // What the cursor covers is exactly what MongoDB holds: count complete lines below it.
    let cursor = p.file_status("/logs/hl/20250624/1")["cursor"]
        .as_u64()
        .unwrap();
    let host = std::fs::read(p.pond.host.join("hourly/20250624/1")).unwrap();
    let covered = host[..cursor as usize]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64;
    assert_eq!(
        p.count(),
        covered,
        "documents vs lines under the committed cursor"
    );
    p.assert_trades_exact(covered, "after SIGTERM");
    let follower = Follower::start(&p.pond);
    wait_for(
        "the rest after restart",
        || p.count() == written,
        || follower.stderr(),
    );
    follower.stop();
    p.assert_trades_exact(written, "after restart");
}

/// SIGKILL at random instants while lines arrive, then restart, several rounds: in the end every
/// line is stored exactly once. The kill instants come from `FOLLOW_KILL_SEED` (hex) when set.
#[test]
fn sigkill_during_follow_then_restart_is_exact() {
    let server = mongo::shared();
    let p = pipeline(server, "follow_sigkill");
    let seed = support::seed(
        "FOLLOW_KILL_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let mut rng = SplitMix64(seed);
    let mut written = 0u64;
    for round in 0..6 {
        let follower = Follower::start(&p.pond);
        let chunks = 3 + rng.below(5);
        for _ in 0..chunks {
            let hour = format!("2025062{}/{}", 4 + round / 3, round % 3);
            append_host(&p.pond, &hour, &trade_lines(written, 40));
            written += 40;
            std::thread::sleep(Duration::from_millis(rng.below(60)));
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        let (code, _) = follower.signal_and_wait("-KILL");
        assert_eq!(code, None, "round {round}: killed by a signal");
        let stored = p.count();
        assert!(
            stored <= written,
            "round {round}: {stored} documents for {written} lines"
        );
    }
    let follower = Follower::start(&p.pond);
    wait_for(
        "every line after the last restart",
        || p.count() == written,
        || follower.stderr(),
    );
    follower.stop();
    p.assert_trades_exact(written, &format!("seed {seed:x}"));
    let verify = p.pond.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

/// The server goes away for a few seconds while lines arrive: mirroring goes on, the stage
/// retries with backoff, and once the server is back every line is stored exactly once.
#[test]
fn server_outage_during_follow_recovers_exactly() {
    let server = Server::dedicated();
    let p = pipeline(&server, "follow_outage");
    let follower = Follower::start(&p.pond);
    append_host(&p.pond, "20250624/3", &trade_lines(0, 100));
    wait_for(
        "before the outage",
        || p.count() == 100,
        || follower.stderr(),
    );
    server.shutdown();
    append_host(&p.pond, "20250624/3", &trade_lines(100, 100));
    append_host(&p.pond, "20250624/4", &trade_lines(200, 100));
    // The mirror keeps up while the destination is down.
    wait_for(
        "mirrored during the outage",
        || p.pond.output(&["cat", "/logs/hl/20250624/4"]).stdout == trade_lines(200, 100),
        || follower.stderr(),
    );
    let behind = |f: &Follower| f.metric("pond_stage_behind{stage=\"/etc/to-mongo\"}");
    wait_for(
        "the stage reports it is behind",
        || behind(&follower) == Some(1.0),
        || follower.stderr(),
    );
    // The outage shows: the stage is failing, it reports lag, and `pond status` exits 1.
    wait_for(
        "status shows the failing stage",
        || node_status(&p.pond)[MONGO_NODE]["state"] == "failing",
        || format!("{:?}", node_status(&p.pond)),
    );
    assert_eq!(p.pond.output(&["status"]).status.code(), Some(1));
    let lag = follower.metric("pond_mongo_lag_bytes{stage=\"/etc/to-mongo\"}");
    assert!(lag.unwrap() > 0.0, "{lag:?}");
    server.restart();
    wait_for(
        "after the outage",
        || p.count() == 300,
        || follower.stderr(),
    );
    wait_for(
        "caught up",
        || behind(&follower) == Some(0.0),
        || follower.stderr(),
    );
    let failures = follower
        .metric("pond_stage_failures_total{stage=\"/etc/to-mongo\"}")
        .unwrap();
    assert!(failures >= 1.0, "failures counted: {failures}");
    wait_for(
        "status healthy again",
        || p.pond.output(&["status"]).status.code() == Some(0),
        || format!("{:?}", node_status(&p.pond)),
    );
    let stderr = follower.stop();
    assert!(stderr.contains("recovered after"), "{stderr}");
    p.assert_trades_exact(300, "after the outage");
}

/// `/metrics` serves every documented series with the node and stage labels; other paths 404.
#[test]
fn metrics_endpoint_serves_the_documented_series() {
    let server = mongo::shared();
    let p = pipeline(server, "follow_metrics");
    append_host(&p.pond, "20250624/5", &trade_lines(0, 30));
    let follower = Follower::start(&p.pond);
    wait_for("lines stored", || p.count() == 30, || follower.stderr());
    let (status, body) = follower.get("/metrics");
    assert!(status.contains("200"), "{status}");
    for series in [
        "pond_steps_total{node=\"/etc/hl\"}",
        "pond_step_seconds_bucket{node=\"/etc/hl\",le=\"+Inf\"}",
        "pond_last_commit_timestamp_seconds{node=\"/etc/hl\"}",
        "pond_logfile_bytes_mirrored_total{node=\"/etc/hl\"}",
        "pond_logfile_files{node=\"/etc/hl\"}",
        "pond_logfile_wake_to_commit_seconds_count{node=\"/etc/hl\"}",
        "pond_stage_runs_total{stage=\"/etc/to-mongo\"}",
        "pond_stage_behind{stage=\"/etc/to-mongo\"}",
        "pond_mongo_lines_read_total{stage=\"/etc/to-mongo\"}",
        "pond_mongo_documents_total{outcome=\"inserted\",stage=\"/etc/to-mongo\"}",
        "pond_mongo_documents_total{outcome=\"duplicate\",stage=\"/etc/to-mongo\"}",
        "pond_mongo_documents_total{outcome=\"dead_lettered\",stage=\"/etc/to-mongo\"}",
        "pond_mongo_retries_total{stage=\"/etc/to-mongo\"}",
        "pond_mongo_batch_seconds_count{stage=\"/etc/to-mongo\"}",
        "pond_mongo_entry_to_ack_seconds_count{stage=\"/etc/to-mongo\"}",
        "pond_mongo_lag_bytes{stage=\"/etc/to-mongo\"}",
        "pond_mongo_lag_seconds{stage=\"/etc/to-mongo\"}",
    ] {
        assert!(
            body.contains(&format!("{series} ")),
            "{series} missing:\n{body}"
        );
    }
    // The counters and the cursor are updated after MongoDB acknowledged: wait for them.
    let lag = "pond_mongo_lag_bytes{stage=\"/etc/to-mongo\"}";
    let inserted = "pond_mongo_documents_total{outcome=\"inserted\",stage=\"/etc/to-mongo\"}";
    wait_for(
        "counters settled",
        || {
            follower.metric(lag) == Some(0.0)
                && follower.metric(inserted) == Some(30.0)
                && node_status(&p.pond)[MONGO_NODE]["lag_bytes"] == 0
        },
        || follower.get("/metrics").1,
    );
    let bytes = std::fs::metadata(p.pond.host.join("hourly/20250624/5"))
        .unwrap()
        .len();
    assert_eq!(
        follower.metric("pond_logfile_bytes_mirrored_total{node=\"/etc/hl\"}"),
        Some(bytes as f64)
    );
    assert_eq!(
        follower.metric("pond_mongo_documents_total{outcome=\"inserted\",stage=\"/etc/to-mongo\"}"),
        Some(30.0)
    );
    assert_eq!(
        follower.metric("pond_mongo_lag_bytes{stage=\"/etc/to-mongo\"}"),
        Some(0.0)
    );
    assert!(follower.get("/nope").0.contains("404"));
    // `pond status` sees the live follow and the stage it runs, with no lag.
    let status = node_status(&p.pond);
    assert_eq!(status["/etc/hl"]["state"], "running", "{status:?}");
    assert_eq!(
        status["/etc/hl"]["last_run"]["command"],
        "follow --metrics-addr 127.0.0.1:0"
    );
    assert_eq!(status["/etc/hl"]["lag_bytes"], 0);
    assert_eq!(status[MONGO_NODE]["state"], "running");
    assert_eq!(status[MONGO_NODE]["lag_bytes"], 0);
    follower.stop();
    let status = node_status(&p.pond);
    assert_eq!(status["/etc/hl"]["state"], "ok", "{status:?}");
    assert!(status["/etc/hl"]["last_run"]["steps"].as_u64().unwrap() >= 1);
}

/// `pond status --json` as a map from node path to its row.
fn node_status(pond: &TestPond) -> std::collections::BTreeMap<String, serde_json::Value> {
    let out = pond.output(&["status", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["path"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

/// SIGHUP re-reads the configs: after the mongo node is pointed at another collection, new lines
/// go there, and nothing already stored moves.
#[test]
fn sighup_reloads_the_configs() {
    let server = mongo::shared();
    let p = pipeline(server, "follow_reload");
    append_host(&p.pond, "20250624/6", &trade_lines(0, 20));
    let follower = Follower::start(&p.pond);
    wait_for("first lines", || p.count() == 20, || follower.stderr());
    p.pond.reinstall(
        "mongo",
        MONGO_NODE,
        &format!(
            "source: \"logs/hl/**\"\nmongodb:\n  uri: \"{}\"\n  database: {}\n  collection: reloaded\n\
             format: hyperliquid/node_trades\n",
            server.uri, p.db
        ),
    );
    let pid = follower.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    wait_for(
        "reload logged",
        || follower.stderr().contains("reloading configs"),
        || follower.stderr(),
    );
    append_host(&p.pond, "20250624/6", &trade_lines(20, 10));
    wait_for(
        "new lines in the new collection",
        || server.count(&p.db, "reloaded") == 10,
        || follower.stderr(),
    );
    follower.stop();
    assert_eq!(server.count(&p.db, COLLECTION), 20);
}

/// Many small steps make many tiny frames; follow's periodic compaction merges them without
/// changing a byte, and the stored content still verifies.
#[test]
fn follow_compacts_the_small_versions_it_makes() {
    let pond = TestPond::new();
    set_follow_config(&pond, None, 0.5);
    let follower = Follower::start(&pond);
    let mut expected = Vec::new();
    for i in 0..12 {
        let chunk = trade_lines(i * 5, 5);
        append_host(&pond, "20250624/7", &chunk);
        expected.extend_from_slice(&chunk);
        let want = expected.clone();
        wait_for(
            "chunk mirrored",
            || pond.output(&["cat", "/logs/hl/20250624/7"]).stdout == want,
            || follower.stderr(),
        );
    }
    let id = pond.node_id("/logs/hl/20250624/7");
    let versions = pond
        .library()
        .snapshot()
        .unwrap()
        .versions(id)
        .unwrap()
        .len();
    assert!(versions >= 10, "one version per step: {versions}");
    // Compaction runs after a step once `compact_interval` has passed: keep the steps coming
    // (one small append at a time) until it has merged the frames.
    let started = Instant::now();
    let mut next = 60;
    loop {
        let frames = pond
            .library()
            .snapshot()
            .unwrap()
            .storage(id)
            .unwrap()
            .frames;
        if (frames as usize) < versions / 2 {
            break;
        }
        assert!(
            started.elapsed() < BOUND,
            "no compaction within {BOUND:?}: {frames} frames; {}\n{}",
            pond.ok(&["log", "--limit", "5"]),
            follower.stderr()
        );
        let chunk = trade_lines(next, 1);
        next += 1;
        append_host(&pond, "20250624/7", &chunk);
        expected.extend_from_slice(&chunk);
        std::thread::sleep(Duration::from_millis(200));
    }
    let want = expected.clone();
    wait_for(
        "the last appends mirrored",
        || pond.output(&["cat", "/logs/hl/20250624/7"]).stdout == want,
        || follower.stderr(),
    );
    follower.stop();
    assert_eq!(pond.cat("/logs/hl/20250624/7"), expected);
    assert!(pond.ok(&["log"]).contains("file(s) compacted"));
    let verify = pond.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

// Regression: a line over 16 MiB stopped `follow`'s mongo stage for good: each run read its
// 16 MiB budget without a newline, sent nothing and started over, while `pond status` said
// all was well. The line is now dead-lettered by its length (its first 4 KiB kept), scanned
// across runs without being held in memory, and the lines after it are stored.
#[test]
fn a_line_over_16_mib_is_dead_lettered_and_the_lines_after_it_are_stored() {
    let server = mongo::shared();
    let p = pipeline(server, "follow_long_line");
    append_host(&p.pond, "20250624/8", &trade_lines(0, 10));
    let follower = Follower::start(&p.pond);
    wait_for("first 10 lines", || p.count() == 10, || follower.stderr());
    let long_len = 20 * 1024 * 1024 + 17;
    let mut long = vec![b'x'; long_len];
    long[0] = b'{';
    long.push(b'\n');
    // Written in pieces, as a writer would, with steps (and stage runs) in between.
    for piece in long.chunks(3 * 1024 * 1024) {
        append_host(&p.pond, "20250624/8", piece);
        std::thread::sleep(Duration::from_millis(150));
    }
    append_host(&p.pond, "20250624/8", &trade_lines(10, 10));
    wait_for(
        "the lines after the long one",
        || p.count() == 20,
        || follower.stderr(),
    );
    let dead = p.docs_of(&format!("{COLLECTION}_rejects"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].get_i64("line_len").unwrap(), long_len as i64);
    assert!(
        dead[0]
            .get_str("reason")
            .unwrap()
            .contains(&format!("line of {long_len} bytes is longer than")),
        "{dead:?}"
    );
    assert_eq!(dead[0].get_str("raw").unwrap().len(), 4096);
    let status = node_status(&p.pond);
    assert_eq!(status[MONGO_NODE]["state"], "running", "{status:?}");
    assert_eq!(status[MONGO_NODE]["lag_bytes"], 0, "{status:?}");
    follower.stop();
    p.assert_trades_exact(20, "after the long line");
}
