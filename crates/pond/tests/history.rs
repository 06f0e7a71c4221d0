//! A pond that runs for years: files gone from the host cost nothing but wake up when needed,
//! history folds with every kept point exact, retention removes only what every node has read,
//! and a `mongo` sync never holds the writer lock while it waits for MongoDB.
//!
//! Needs SecantusDB for the pipeline tests (`make test` installs it). The crash test's kill
//! instants come from `POND_FOLD_SEED` (hex; printed on stderr).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::mongo::{self, LOGFILE_NODE, MONGO_NODE, Pipeline, hl_logfile_config, trade_lines};
use support::{SplitMix64, TestPond, assert_one_line_error, b3sum, log_bytes};

/// The logfile node's file rows (`status --json`), by pond path: (on host, size).
fn logfile_files(p: &Pipeline<'_>) -> Vec<(String, bool, u64)> {
    let mut rows: Vec<(String, bool, u64)> = p.json(&["run", LOGFILE_NODE, "status"])["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["on_host"].as_bool().unwrap(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

// A pruned hour file whose name comes back with new content: the new file is new content (a
// new node, sent downstream), the old one, long gone and never loaded by a sync since, steps
// aside to NAME@TXN with its bytes intact.
#[test]
fn a_pruned_name_that_reappears_is_new_content_and_the_old_file_steps_aside() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "pruned_name_reappears",
        "hyperliquid/node_trades",
        "",
    );
    let first = trade_lines(0, 5);
    p.write("20250101/0", &first);
    p.write("20250101/1", &trade_lines(100, 2));
    assert_eq!(p.sync()["inserted"], 5 + 2);
    std::fs::remove_file(p.pond.host.join("hourly/20250101/0")).unwrap();
    p.sync();
    // Gone and left alone by a few more runs.
    for i in 0..3 {
        p.append("20250101/1", &trade_lines(200 + i, 1));
        p.sync();
    }
    let second = trade_lines(50, 4);
    p.write("20250101/0", &second);
    let report = p.sync();
    assert_eq!(report["inserted"], 4, "{report}");
    assert_eq!(p.count(), 5 + 2 + 3 + 4);
    assert_eq!(p.pond.cat("/logs/hl/20250101/0"), second);
    let files = logfile_files(&p);
    let aside: Vec<&(String, bool, u64)> = files
        .iter()
        .filter(|(path, ..)| path.starts_with("/logs/hl/20250101/0@"))
        .collect();
    assert_eq!(aside.len(), 1, "{files:?}");
    assert!(!aside[0].1, "the old file is gone from the host");
    assert_eq!(p.pond.cat(&aside[0].0), first);
    let verify = p.pond.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

// A file every document of which was stored long ago (so no run of the mongo node looks at it)
// grows again: the next run finds it through the change index and sends the new lines, and
// only the files that changed are looked at.
#[test]
fn a_fully_sent_file_that_grows_again_is_sent_again() {
    let server = mongo::shared();
    let p = Pipeline::new(server, "settled_file_grows", "hyperliquid/node_trades", "");
    for hour in 0..6 {
        p.write(&format!("20250101/{hour}"), &trade_lines(hour * 100, 3));
    }
    assert_eq!(p.sync()["inserted"], 18);
    // Only the newest hour grows for a while: the mongo runs look at it alone.
    for i in 0..3 {
        p.append("20250101/5", &trade_lines(1000 + i, 1));
        let report = p.sync();
        let files: Vec<&str> = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(files, ["/logs/hl/20250101/5"], "{report}");
    }
    // A late write to an old hour.
    p.append("20250101/0", &trade_lines(2000, 2));
    let report = p.sync();
    assert_eq!(report["inserted"], 2, "{report}");
    assert_eq!(p.count(), 18 + 3 + 2);
    let status = p.pond.json(&["status"]);
    let mongo_node = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["path"] == MONGO_NODE)
        .unwrap()
        .clone();
    assert_eq!(mongo_node["lag_bytes"], 0, "{status}");
    // A reset cursor sends a settled file again (its documents are already there).
    p.ok(&[
        "run",
        MONGO_NODE,
        "reset",
        "/logs/hl/20250101/3",
        "--offset",
        "0",
    ]);
    let report = p.mongo_sync();
    assert_eq!(report["duplicates"], 3, "{report}");
    assert_eq!(p.count(), 18 + 3 + 2);
}

/// Writes the logfile node's config with `retain` and no downstream.
fn set_retention(p: &Pipeline<'_>, retain: &str) {
    p.pond.reinstall(
        "logfile",
        LOGFILE_NODE,
        &hl_logfile_config(&p.pond, &format!("retain: {retain}\n")),
    );
}

// Retention removes a file gone from the host for longer than `retain` only once every node
// has read all of it: never while the mongo node has lines of it to send. The removal is a
// transaction `pond log` shows, the space comes back, and `verify` stays clean.
#[test]
fn retention_never_removes_bytes_a_node_has_not_read() {
    let server = mongo::shared();
    let p = Pipeline::unchained(server, "retention", "hyperliquid/node_trades", "");
    set_retention(&p, "1s");
    p.write("20250101/0", &trade_lines(0, 40));
    p.write("20250101/1", &trade_lines(100, 3));
    p.mirror();
    let old_id = p.pond.node_id("/logs/hl/20250101/0");
    std::fs::remove_file(p.pond.host.join("hourly/20250101/0")).unwrap();
    std::fs::remove_file(p.pond.host.join("hourly/20250101/1")).unwrap();
    p.write("20250101/2", &trade_lines(200, 1));
    p.mirror();
    std::thread::sleep(Duration::from_millis(1100));

    // The mongo node has read nothing: nothing goes.
    let report = p.pond.json(&["maintain"]);
    assert_eq!(report["nodes"], serde_json::json!([]), "{report}");
    assert_eq!(logfile_files(&p).len(), 3);
    let one = p.pond.node_id("/logs/hl/20250101/1");
    p.ok(&["run", MONGO_NODE, "sync"]);
    // Retention looks again after `retain` (1 s here; a minute at most).
    std::thread::sleep(Duration::from_millis(1100));
    // Every node has read everything now: both gone files go, the one on the host stays.
    let report = p.pond.json(&["maintain"]);
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{report}");
    let text = nodes[0].as_str().unwrap();
    assert!(
        text.starts_with(&format!("{LOGFILE_NODE}: retention 1s: removed 2 file(s)")),
        "{text}"
    );
    assert!(text.contains("/logs/hl/20250101/0 ("), "{text}");
    let files = logfile_files(&p);
    assert_eq!(
        files,
        [("/logs/hl/20250101/2".to_string(), true, files[0].2)]
    );
    let log = p.pond.ok(&["log", "--limit", "20"]);
    assert!(log.contains("retention 1s: removed 2 file(s)"), "{log}");
    // The data files are gone once no snapshot reads them (this maintain's later passes).
    let data: Vec<String> = std::fs::read_dir(p.pond.pond.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for id in [old_id, one] {
        assert!(
            !data.iter().any(|f| f.starts_with(&format!("{id}."))),
            "{id}: {data:?}"
        );
    }
    let verify = p.pond.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
    assert_eq!(p.count(), 44);
    let status = p.pond.output(&["status"]);
    assert!(status.status.success(), "{status:?}");
}

// Retention waits for a node that has not read a file to the end, however long it is due.
#[test]
fn retention_keeps_a_file_a_node_has_read_only_in_part() {
    let server = mongo::shared();
    let p = Pipeline::unchained(server, "retention_partial", "hyperliquid/node_trades", "");
    set_retention(&p, "1s");
    let lines = trade_lines(0, 10);
    p.write("20250101/0", &lines);
    p.mirror();
    p.ok(&["run", MONGO_NODE, "sync"]);
    // More lines arrive, then the host prunes the file: the mongo node has not read them.
    p.append("20250101/0", &trade_lines(10, 5));
    p.mirror();
    std::fs::remove_file(p.pond.host.join("hourly/20250101/0")).unwrap();
    p.mirror();
    std::thread::sleep(Duration::from_millis(1100));
    for _ in 0..2 {
        let report = p.pond.json(&["maintain"]);
        assert_eq!(report["nodes"], serde_json::json!([]), "{report}");
        assert_eq!(logfile_files(&p).len(), 1);
    }
    assert_eq!(p.mongo_sync()["inserted"], 5);
    std::thread::sleep(Duration::from_millis(1100));
    let report = p.pond.json(&["maintain"]);
    assert_eq!(report["nodes"].as_array().unwrap().len(), 1, "{report}");
    assert!(logfile_files(&p).is_empty());
    assert_eq!(p.count(), 15);
}

/// Appends `n` small versions to `file`, each in its own transaction, through the library.
fn append_txns(tp: &TestPond, file: &str, n: usize, seed: u64) -> Vec<u8> {
    let mut all = Vec::new();
    for i in 0..n {
        let bytes = log_bytes(300 + i % 200, seed + i as u64);
        tp.append_versions(file, &[&bytes]);
        all.extend(bytes);
    }
    all
}

/// Transaction records of `pond log --json`, oldest first: they tile 1..=last.
fn assert_records_tile(tp: &TestPond) -> Vec<Value> {
    let mut records = tp.json(&["log"])["transactions"]
        .as_array()
        .unwrap()
        .clone();
    records.reverse();
    let mut next = 1;
    for r in &records {
        assert_eq!(r["txn"], next, "{records:?}");
        next = r["last_txn"].as_u64().unwrap() + 1;
    }
    records
}

// With no recent window, `pond maintain` folds every version of a file into one per hour and
// the transactions into one record per hour: `show` gives the range, `cat` of a folded number
// says where it went, `log` says what was folded, and the kept version is exact.
#[test]
fn folded_history_shows_ranges_and_keeps_kept_versions_exact() {
    let tp = TestPond::new();
    let settings = tp.json(&[
        "settings",
        "--history-recent",
        "0s",
        "--history-interval",
        "1h",
    ]);
    assert_eq!(settings["history"]["recent_secs"], 0.0);
    assert_eq!(settings["history"]["interval_secs"], 3600.0);
    assert!(settings["txn"].is_u64(), "{settings}");
    let content = append_txns(&tp, "/f.log", 120, 3);
    let report = tp.json(&["maintain"]);
    assert!(
        report["folded"]["versions_folded"].as_u64().unwrap() >= 118,
        "{report}"
    );
    assert!(
        report["folded"]["txns_folded"].as_u64().unwrap() >= 118,
        "{report}"
    );

    let shown = tp.json(&["show", "/f.log"]);
    let rows = shown["versions"].as_array().unwrap();
    // One row per hour bucket the appends fell in (two when the test crossed an hour).
    assert!((1..=2).contains(&rows.len()), "{shown}");
    let last = rows.last().unwrap();
    assert_eq!(last["version"], 120);
    assert!(last["segment_blake3"].is_null(), "{shown}");
    assert_eq!(last["total_len"], content.len());
    let file = tp.host_file("f.log", &content);
    assert_eq!(last["blake3"], b3sum(&file));
    assert_eq!(tp.cat("/f.log"), content);
    if rows.len() == 1 {
        assert_eq!(rows[0]["first_version"], 1);
        let (code, err) = tp.fails(&["cat", "/f.log", "--version", "50"]);
        assert_eq!(code, 1);
        assert_one_line_error(&err, &["/f.log", "version 50 was folded into version 120"]);
    }
    let records = assert_records_tile(&tp);
    let folded: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("folded").is_some())
        .collect();
    assert!(!folded.is_empty(), "{records:?}");
    let counted: u64 = folded
        .iter()
        .map(|r| r["folded"]["count"].as_u64().unwrap())
        .sum();
    assert!(counted >= 120, "{folded:?}");
    assert!(
        folded
            .iter()
            .any(|r| r["summary"].as_str().unwrap().contains("× test-append")),
        "{folded:?}"
    );
    let text = tp.ok(&["log"]);
    assert!(text.contains(" transactions folded: "), "{text}");
    let verify = tp.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

// SIGKILL at random instants of `pond maintain` while it folds history and compacts: every
// time, `verify` is clean, every byte reads back, the kept versions' roots are what they were,
// and the transaction records tile the numbers without a gap.
#[test]
fn maintain_killed_while_folding_loses_nothing() {
    let seed = support::seed("POND_FOLD_SEED", 0xf01d_2026_0009);
    let tp = TestPond::new();
    tp.ok(&[
        "settings",
        "--history-recent",
        "0s",
        "--history-interval",
        "1s",
    ]);
    let mut content = Vec::new();
    let mut killed = 0;
    for round in 0..6u64 {
        let mut rng = SplitMix64(seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        content.extend(append_txns(
            &tp,
            "/f.log",
            60,
            seed.wrapping_add(round * 1000),
        ));
        let last_root = tp.json(&["show", "/f.log"])["versions"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["blake3"]
            .clone();
        let delay = rng.below(60);
        let context = format!("seed {seed:#x}, round {round}, kill after {delay} ms");
        if !support::kill_after(tp.cmd(&["maintain"]), Duration::from_millis(delay))
            .status
            .success()
        {
            killed += 1;
        }
        let verify = tp.output(&["verify"]);
        assert!(verify.status.success(), "{context}: {verify:?}");
        assert!(tp.cat("/f.log") == content, "{context}: content differs");
        let versions = tp.json(&["show", "/f.log"])["versions"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(versions.last().unwrap()["blake3"], last_root, "{context}");
        assert_records_tile(&tp);
        // Every kept version reads back as the prefix its row says.
        for v in versions.iter().step_by(7) {
            let out = tp.output(&["cat", "/f.log", "--version", &v["version"].to_string()]);
            assert!(out.status.success(), "{context}");
            assert_eq!(out.stdout.len() as u64, v["total_len"].as_u64().unwrap());
            assert!(content.starts_with(&out.stdout), "{context}");
        }
        // Spread the rounds over more than one interval.
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("{killed} of 6 maintain runs were killed before they finished");
    tp.ok(&["maintain"]);
    let verify = tp.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
    assert!(tp.cat("/f.log") == content);
    assert!(
        tp.json(&["show", "/f.log"])["versions"]
            .as_array()
            .unwrap()
            .len()
            < 360
    );
}

// A cron `mongo sync` against a server that does not answer holds the writer lock only to
// commit: while it retries, other writers (the mirror) get the lock at once.
#[test]
fn a_mongo_sync_waiting_for_an_unreachable_server_does_not_hold_the_writer_lock() {
    let server = mongo::shared();
    // A port nothing listens on: every attempt fails until the retry deadline.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let uri =
        format!("mongodb://127.0.0.1:{closed}/?directConnection=true&serverSelectionTimeoutMS=500");
    let p = Pipeline::with_uri(
        server,
        "unreachable_no_lock",
        &uri,
        "hyperliquid/node_trades",
        "retry_deadline_secs: 6\n",
    );
    p.set_logfile(false, true);
    p.write("20250101/0", &trade_lines(0, 5));
    p.mirror();
    let mut sync = p
        .pond
        .cmd(&["run", MONGO_NODE, "sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        sync.try_wait().unwrap().is_none(),
        "the sync should still be retrying"
    );
    // The mirror gets the lock at once (with a lock timeout of 1 s) while the sync retries.
    p.append("20250101/0", &trade_lines(5, 1));
    let started = Instant::now();
    let mirrored = p
        .pond
        .output(&["--lock-timeout", "1", "run", LOGFILE_NODE, "sync"]);
    assert!(mirrored.status.success(), "{mirrored:?}");
    assert!(
        sync.try_wait().unwrap().is_none(),
        "the sync should still be retrying"
    );
    eprintln!(
        "mirror committed in {:?} while the sync retried",
        started.elapsed()
    );
    let status = sync.wait().unwrap();
    assert!(!status.success());
    // A second run of the same node waits for the first (the node's run lock), not the pond.
    let verify = p.pond.output(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

// Node state written by a newer pond (a format this build does not know) is refused: the run
// fails naming the state, its node and both formats, and changes nothing; a state this build
// writes again is read as before.
#[test]
fn node_state_of_an_unknown_format_is_refused_and_nothing_changes() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "unknown_state_format",
        "hyperliquid/node_trades",
        "",
    );
    p.write("20250101/0", &trade_lines(0, 3));
    assert_eq!(p.sync()["inserted"], 3);
    let pond = pond_store::Pond::open(&p.pond.pond).unwrap();
    let snapshot = pond.snapshot().unwrap();
    let logfile = snapshot
        .resolve(&support::pond_path(LOGFILE_NODE))
        .unwrap()
        .id;
    let mongo_node = snapshot
        .resolve(&support::pond_path(MONGO_NODE))
        .unwrap()
        .id;
    let file = snapshot
        .resolve(&support::pond_path("/logs/hl/20250101/0"))
        .unwrap()
        .id;
    let logfile_key = format!("logfile:{logfile}");
    let cursor_key = format!("mongo:{mongo_node}");
    let (state, cursor) = (
        snapshot.state(file, &logfile_key).unwrap().unwrap(),
        snapshot.state(file, &cursor_key).unwrap().unwrap(),
    );
    drop(snapshot);
    let future = |bytes: &[u8]| {
        let mut value: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(value["format"], 1, "{value}");
        value["format"] = 7.into();
        serde_json::to_vec(&value).unwrap()
    };
    let rewrite = |key: &str, bytes: &[u8]| {
        let mut txn = pond
            .begin(vec!["test".into()], Duration::from_secs(5))
            .unwrap();
        txn.set_state(file, key, bytes).unwrap();
        txn.commit("test: set state").unwrap();
    };
    rewrite(&logfile_key, &future(&state));
    p.append("20250101/0", &trade_lines(10, 2));
    let log_before = p.pond.output(&["log"]).stdout;
    let run = p.run(&["run", LOGFILE_NODE, "sync"]);
    assert!(!run.status.success(), "{run:?}");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_one_line_error(
        &err,
        &[
            LOGFILE_NODE,
            "logfile file state",
            &format!("of node {file} has format 7"),
            "reads format 1",
        ],
    );
    assert_eq!(p.pond.output(&["log"]).stdout, log_before);
    // The mirror's own state restored, the stage's cursor from the future is refused too.
    rewrite(&logfile_key, &state);
    rewrite(&cursor_key, &future(&cursor));
    let run = p.run(&["run", LOGFILE_NODE, "sync", "--json"]);
    assert!(!run.status.success(), "{run:?}");
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["downstream"][0]["ok"], false, "{report}");
    let error = report["downstream"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("mongo cursor") && error.contains("has format 7"),
        "{error}"
    );
    assert_eq!(p.count(), 3);
    // Back to a format this build knows: the two new lines go through, once.
    rewrite(&cursor_key, &cursor);
    assert_eq!(p.sync()["inserted"], 2);
    assert_eq!(p.count(), 5);
}
