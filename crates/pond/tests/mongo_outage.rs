//! The `mongo` factory when MongoDB goes away mid-sync. Each test stops and restarts its own
//! SecantusDB ([`mongo::Server::dedicated`], on-disk storage so acknowledged documents survive
//! the restart), so the shared server of `mongo.rs` is never disturbed.
//!
//! Both tests stop the server once the sync has stored a few hundred documents: the stop lands
//! mid-sync, with batches in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::mongo::{self, LOGFILE_NODE, MONGO_NODE, Pipeline, trade_lines, trade_time_ns};

const FILE: &str = "/logs/hl/20250624/3";
/// Lines per test: with one document per insert the sync takes a few seconds.
const N: u64 = 3000;

/// Waits until the pipeline has stored at least `docs` documents; the sync must still be going.
fn wait_for_progress(
    p: &Pipeline,
    docs: u64,
    sync: &std::thread::ScopedJoinHandle<'_, std::process::Output>,
) {
    let started = Instant::now();
    while p.count() < docs {
        assert!(
            !sync.is_finished(),
            "the sync ended before the server could be stopped"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sync stored only {} documents in 30 s",
            p.count()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !sync.is_finished(),
        "the sync ended before the server could be stopped"
    );
}

/// The server is stopped mid-sync for 10 s, well within `retry_deadline_secs: 60`: the sync
/// waits it out (a background thread restarts the server), exits 0 with every line stored once,
/// and reports its retries.
#[test]
fn server_stopped_for_10_s_within_the_retry_deadline_sync_completes_exactly() {
    let server = mongo::Server::dedicated();
    let mut p = Pipeline::new(
        &server,
        "outage_within_deadline",
        "hyperliquid/node_trades",
        "batch_size: 1\nmax_in_flight: 2\nretry_deadline_secs: 60\n",
    );
    p.limit = Duration::from_secs(40);
    p.write("20250624/3", &trade_lines(0, N));
    let (out, elapsed) = std::thread::scope(|s| {
        let started = Instant::now();
        let sync = s.spawn(|| p.run(&["run", LOGFILE_NODE, "sync", "--json"]));
        wait_for_progress(&p, 300, &sync);
        server.shutdown();
        let stopped = Instant::now();
        eprintln!("server stopped {:?} into the sync", started.elapsed());
        let server = &server;
        s.spawn(move || {
            std::thread::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed()));
            server.restart();
            eprintln!("server restarted after {:?}", stopped.elapsed());
        });
        (
            sync.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            started.elapsed(),
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a 10 s outage within a 60 s retry deadline failed the sync: {stderr}"
    );
    assert!(elapsed >= Duration::from_secs(10), "{elapsed:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stage = &report["downstream"][0];
    assert_eq!(stage["ok"], true, "{report}");
    let stage = &stage["report"];
    p.assert_trades_exact(N, "after the outage");
    assert_eq!(
        stage["inserted"].as_u64().unwrap() + stage["duplicates"].as_u64().unwrap(),
        N,
        "{stage}"
    );
    assert!(stage["retries"].as_u64().unwrap() > 0, "{stage}");
    let row = p.file_status(FILE);
    assert_eq!(row["cursor"], row["size"], "{row}");
    assert_eq!(row["last_error"], Value::Null, "{row}");
}

/// The server stays down longer than `retry_deadline_secs: 3`: the sync exits non-zero with an
/// error naming the cause; the committed cursor is safe (within the file, and every line before
/// it is in MongoDB once the server is back); a later run completes exactly.
#[test]
fn server_down_past_the_retry_deadline_fails_naming_the_cause_with_a_safe_cursor() {
    let server = mongo::Server::dedicated();
    let mut p = Pipeline::new(
        &server,
        "outage_past_deadline",
        "hyperliquid/node_trades",
        "batch_size: 1\nmax_in_flight: 2\nretry_deadline_secs: 3\n",
    );
    p.limit = Duration::from_secs(25);
    let bytes = trade_lines(0, N);
    p.write("20250624/3", &bytes);
    let out = std::thread::scope(|s| {
        let sync = s.spawn(|| p.run(&["run", LOGFILE_NODE, "sync", "--json"]));
        wait_for_progress(&p, 300, &sync);
        server.shutdown();
        sync.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("failed sync: {stderr}");
    assert!(
        !out.status.success(),
        "the sync succeeded with the server down"
    );
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    // One short line: what failed, against which host, the root cause, what pond did. (It
    // was kilobytes of the driver's topology dump.)
    for needle in [
        MONGO_NODE,
        FILE,
        "MongoDB at 127.0.0.1:",
        "connection refused",
        "retried",
        "retry_deadline_secs",
        "cursor kept at offset",
    ] {
        assert!(
            error.contains(needle),
            "the error should name {needle:?}: {error}"
        );
    }
    assert!(!error.contains("Topology"), "{error}");
    assert!(error.len() < 400, "{} characters: {error}", error.len());

    // The cursor is committed and safe; `status` needs no server.
    let row = p.file_status(FILE);
    eprintln!("status after the failure: {row}");
    let (cursor, size) = (
        row["cursor"].as_u64().unwrap(),
        row["size"].as_u64().unwrap(),
    );
    assert_eq!(size, bytes.len() as u64, "{row}");
    assert!(cursor <= size, "{row}");
    assert!(
        cursor < size,
        "the cursor passed lines that were never stored: {row}"
    );
    assert_eq!(row["lag"], size - cursor, "{row}");
    assert!(
        cursor == 0 || bytes[cursor as usize - 1] == b'\n',
        "cursor {cursor} is not at a line start"
    );
    assert!(
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("gave up")),
        "status should show the last error: {row}"
    );

    server.restart();
    // Every line before the cursor is in MongoDB.
    let lines_before = bytes[..cursor as usize]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64;
    let stored: BTreeSet<i64> = p
        .docs()
        .iter()
        .map(|d| d.get_i64("time_ns").unwrap())
        .collect();
    for i in 0..lines_before {
        assert!(
            stored.contains(&trade_time_ns(i)),
            "line {i} is before the cursor ({cursor}) but not in MongoDB"
        );
    }

    // A later run goes on from the cursor and completes exactly.
    let report = p.sync();
    p.assert_trades_exact(N, "after the later run");
    assert_eq!(
        report["inserted"].as_u64().unwrap() + report["duplicates"].as_u64().unwrap(),
        N - lines_before,
        "{report}"
    );
    let row = p.file_status(FILE);
    assert_eq!(row["cursor"], row["size"], "{row}");
    assert_eq!(row["last_error"], Value::Null, "{row}");
}

// Regression: a wrong password buried `SCRAM failure: authentication failed` in a dump of the
// driver's topology. The error is one line: the server, "authentication failed", what pond did,
// where the cursor stays; never the password.
#[test]
fn a_wrong_password_fails_in_one_line_naming_authentication() {
    let server = mongo::Server::dedicated();
    mongo::block_on(
        server
            .client()
            .database("admin")
            .run_command(mongodb::bson::doc! {
                "createUser": "pond", "pwd": "right-password", "roles": ["root"]
            }),
    )
    .unwrap();
    server.stop();
    server.restart_with("--auth");
    let uri = format!(
        "mongodb://pond:wrong-password@127.0.0.1:{}/?directConnection=true&authSource=admin",
        server.port
    );
    let mut p = Pipeline::with_uri(
        &server,
        "wrong_password",
        &uri,
        "hyperliquid/node_trades",
        "retry_deadline_secs: 2\n",
    );
    p.limit = Duration::from_secs(25);
    p.write("20250624/3", &trade_lines(0, 5));
    let out = p.run(&["run", LOGFILE_NODE, "sync"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    eprintln!("with a wrong password: {error}");
    for needle in [
        "MongoDB at 127.0.0.1:",
        "authentication failed",
        "cursor kept at offset 0",
    ] {
        assert!(
            error.contains(needle),
            "the error should name {needle:?}: {error}"
        );
    }
    assert!(!error.contains("Topology"), "{error}");
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    assert!(error.len() < 400, "{} characters: {error}", error.len());
}
