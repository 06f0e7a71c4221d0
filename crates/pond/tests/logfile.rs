//! Scenario suite for the `logfile` factory, driving the real `pond` binary through
//! [`support::logs`] (whose doc says what every step checks): new files, appends and idle reruns,
//! the Hyperliquid node layout, a back-fill under a small descriptor limit, and patterns that
//! match nothing. Rotation, truncation and archives are in `logfile_rotation.rs`; unreadable
//! files, files changing during a sync and SIGKILL in `logfile_faults.rs`.
//!
//! Needs `b3sum` on PATH (`make test` installs it under `.tools/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use support::TestPond;
use support::logs::{BLOCK, Logs, bytes_of, lines, logfile_config, pairs};

// ---------------------------------------------------------------------------------------------
// 1-3. New files, appends, idle reruns

#[test]
fn first_ingest_then_idempotent_reruns() {
    let logs = Logs::flat("");
    // Edge cases, byte-exact: empty, no trailing newline, non-UTF-8, a 1 MB line.
    logs.write("app.log", b"");
    logs.write("app-empty.log", b"");
    logs.write("app-nonl.log", b"{\"a\":1}\n{\"b\":2}");
    let mut binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    binary.extend_from_slice(b"\xff\xfe\xc3\x28 not utf-8 \x80\n");
    logs.write("app-binary.log", &binary);
    let mut long_line = vec![b'x'; 1 << 20];
    long_line.extend_from_slice(b"\n{\"after\":\"the long line\"}\n");
    logs.write("app-longline.log", &long_line);
    logs.write("app-old.log", &lines(40_000, 1));
    // Not matched by either pattern: never mirrored.
    logs.write("other.log", b"not mine\n");
    logs.write("app.log.1", b"not mine either\n");

    let report = logs.step(
        "first ingest",
        &[
            ("app.log", "new"),
            ("app-empty.log", "new"),
            ("app-nonl.log", "new"),
            ("app-binary.log", "new"),
            ("app-longline.log", "new"),
            ("app-old.log", "new"),
        ],
    );
    let total: usize = 15 + binary.len() + long_line.len() + 40_000;
    assert_eq!(report["bytes_written"], total, "{report}");
    assert_eq!(report["bytes_read"], total, "{report}");
    assert_eq!(
        bytes_of(&report, "app-longline.log"),
        long_line.len() as u64
    );
    assert_eq!(bytes_of(&report, "app.log"), 0);
    for name in ["app-nonl.log", "app-binary.log", "app-longline.log"] {
        assert_eq!(logs.versions(name).len(), 1, "{name}");
    }
    let ids: BTreeMap<String, i64> = logs
        .mirrored()
        .iter()
        .map(|(n, e)| (n.clone(), e["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(ids.len(), 6, "{ids:?}");

    logs.idle("first rerun");
    logs.idle("second rerun");

    // The empty active file starts to grow; the line without newline is completed.
    logs.append("app.log", b"{\"first\":1}\n");
    logs.append("app-nonl.log", b"\n");
    let report = logs.step(
        "empty file grew, archive completed",
        &[("app.log", "appended"), ("app-nonl.log", "appended")],
    );
    assert_eq!(bytes_of(&report, "app.log"), 12);
    assert_eq!(bytes_of(&report, "app-nonl.log"), 1);
    assert_eq!(report["bytes_written"], 13);
    assert_eq!(*logs.segments("app-nonl.log").last().unwrap(), 1);
    logs.idle("rerun after appends");

    // Same bytes, newer mtime: nothing stored, and the identity is remembered so that the
    // following run is O(1) again.
    logs.bump_mtime("app-old.log");
    let report = logs.step("touched", &[]);
    assert_eq!(report["bytes_written"], 0);
    assert_eq!(logs.versions("app-old.log").len(), 1);
    logs.idle("rerun after touch");

    let after: BTreeMap<String, i64> = logs
        .mirrored()
        .iter()
        .map(|(n, e)| (n.clone(), e["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(after, ids, "node ids changed");
}

#[test]
fn large_new_file_is_one_version_and_appends_store_only_new_bytes() {
    let logs = Logs::flat("");
    let all = lines(300_000 + 4_321, 2);
    logs.write("app.log", &all[..250_001]);
    let report = logs.step("new 250 KB file", &[("app.log", "new")]);
    assert_eq!(bytes_of(&report, "app.log"), 250_001);
    let versions = logs.versions("app.log");
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0]["segment_len"], 250_001);
    assert_eq!(versions[0]["total_len"], 250_001);
    let id = logs.id("app.log");

    logs.append("app.log", &all[250_001..]);
    let report = logs.step("append", &[("app.log", "appended")]);
    let delta = all.len() as u64 - 250_001;
    assert_eq!(bytes_of(&report, "app.log"), delta);
    assert_eq!(report["bytes_written"], delta);
    assert_eq!(logs.segments("app.log"), [250_001, delta]);
    assert_eq!(logs.id("app.log"), id);
    logs.idle("rerun");
}

#[test]
fn growth_across_block_boundaries_up_to_13_mb() {
    let mut logs = Logs::flat("");
    logs.dry_run_first = false; // dry runs are compared everywhere else; this one is about size
    let total = 13 * (1 << 20) + 777;
    let all = lines(total, 3);
    let sizes = [
        1_000,
        BLOCK,
        BLOCK + 1,
        3 * BLOCK - 1,
        1_000_003,
        64 * BLOCK,
        5 << 20,
        total,
    ];
    logs.write("app.log", &all[..sizes[0]]);
    logs.step("first 1000 bytes", &[("app.log", "new")]);
    let id = logs.id("app.log");
    let mut expected_segments = vec![sizes[0] as u64];
    for pair in sizes.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        let ctx = format!("grow {old} -> {new}");
        logs.append("app.log", &all[old..new]);
        let report = logs.step(&ctx, &[("app.log", "appended")]);
        let delta = (new - old) as u64;
        assert_eq!(bytes_of(&report, "app.log"), delta, "{ctx}");
        assert_eq!(report["bytes_written"], delta, "{ctx}");
        // Sampled check: the first block, the old end's block and two samples, at most.
        let read = report["bytes_read"].as_u64().unwrap();
        assert!(
            read >= delta && read <= delta + 4 * BLOCK as u64,
            "{ctx}: read {read} bytes for a {delta}-byte append"
        );
        expected_segments.push(delta);
        assert_eq!(logs.segments("app.log"), expected_segments, "{ctx}");
        assert_eq!(logs.id("app.log"), id, "{ctx}");
    }
    logs.idle("rerun at 13 MB");
}

#[test]
fn verify_full_rehashes_the_whole_prefix() {
    let logs = Logs::flat("verify: full\n");
    let all = lines(10 * BLOCK + 100_000, 4);
    logs.write("app.log", &all[..10 * BLOCK + 5]);
    logs.step("new", &[("app.log", "new")]);
    logs.append("app.log", &all[10 * BLOCK + 5..]);
    let report = logs.step("append", &[("app.log", "appended")]);
    let read = report["bytes_read"].as_u64().unwrap();
    assert!(
        read >= all.len() as u64,
        "verify: full must re-hash the whole {}-byte prefix, read {read}",
        10 * BLOCK + 5
    );
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// The Hyperliquid node layout: hourly files in daily directories, old days pruned

#[test]
fn node_layout_over_three_days() {
    let mut logs = Logs::new("hourly", "*/*", None, "");
    let days = ["20250310", "20250311", "20250312"];
    // Host content, and the size each file had at the last sync.
    let mut content: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut synced: BTreeMap<String, usize> = BTreeMap::new();
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeMap<String, i64> = BTreeMap::new();
    let mut pruned: Vec<String> = Vec::new();
    let mut seed = 1_000u64;
    let mut syncs = 0;

    for (d, day) in days.iter().enumerate() {
        if d == 2 {
            // Day 1 is pruned on the host; the pond keeps it.
            std::fs::remove_dir_all(logs.host(days[0])).unwrap();
            for (name, bytes) in content.iter().filter(|(n, _)| n.starts_with(days[0])) {
                logs.kept.insert(name.clone(), bytes.clone());
                pruned.push(name.clone());
            }
            content.retain(|n, _| !n.starts_with(days[0]));
        }
        let mut previous: Option<String> = None;
        for hour in 0..24 {
            let name = format!("{day}/{hour}");
            seed += 1;
            let bytes = lines(1_500 + (seed as usize * 37) % 3_000, seed);
            logs.append(&name, &bytes);
            content.entry(name.clone()).or_default().extend(&bytes);
            // Late lines still land in the previous hour's file.
            if let Some(prev) = &previous {
                let late = lines(200 + hour * 3, seed ^ 0xff);
                logs.append(prev, &late);
                content.get_mut(prev).unwrap().extend(&late);
            }
            previous = Some(name);
            if hour % 6 != 5 {
                continue;
            }
            // A sync every six hours.
            let mut expect: Vec<(String, String)> = Vec::new();
            for (name, bytes) in &content {
                match synced.get(name) {
                    None => expect.push((name.clone(), "new".into())),
                    Some(&len) if len < bytes.len() => {
                        expect.push((name.clone(), "appended".into()))
                    }
                    Some(_) => {}
                }
            }
            for name in &pruned {
                if synced.remove(name).is_some() {
                    expect.push((name.clone(), "missing".into()));
                }
            }
            syncs += 1;
            logs.step(&format!("day {day} hour {hour}"), &pairs(&expect));
            for (name, action) in &expect {
                if action != "missing" {
                    synced.insert(name.clone(), content[name].len());
                    *versions.entry(name.clone()).or_default() += 1;
                }
            }
            for (name, entry) in logs.mirrored() {
                let id = entry["id"].as_i64().unwrap();
                assert_eq!(
                    *ids.entry(name.clone()).or_insert(id),
                    id,
                    "{name} changed id"
                );
            }
        }
    }
    assert_eq!(syncs, 12);
    logs.idle("rerun after three days");
    assert_eq!(logs.mirrored().len(), 72);
    for name in ["20250310/0", "20250310/23", "20250311/5", "20250312/23"] {
        assert_eq!(logs.versions(name).len(), versions[name], "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Idle reruns are O(1)

#[test]
fn idle_rerun_over_200_files_reads_nothing() {
    let logs = Logs::flat("");
    let mut expect = vec![("app.log".to_string(), "new".to_string())];
    logs.write("app.log", &lines(4_000, 120));
    for i in 0..200 {
        let name = format!("app-{i:03}.log");
        logs.write(&name, &lines(800 + i * 13, 121 + i as u64));
        expect.push((name, "new".into()));
    }
    logs.step("200 archives and the active file", &pairs(&expect));
    logs.idle("idle rerun over 201 files");
    logs.idle("second idle rerun");

    logs.append("app.log", &lines(5_000, 400));
    logs.write("app-200.log", &lines(2_000, 401));
    let report = logs.step(
        "one append, one new archive",
        &[("app.log", "appended"), ("app-200.log", "new")],
    );
    let read = report["bytes_read"].as_u64().unwrap();
    assert!(
        read <= 7_000 + 4 * BLOCK as u64,
        "a sync reads what changed, not all 202 files: {read}"
    );
    logs.idle("idle again");
}

/// A first sync of thousands of new hour files (a back-fill) under a hard limit of 128 open
/// files: host files and data files are open only while they are read or written, so the
/// descriptors a run needs do not grow with the number of files.
#[test]
fn backfill_of_thousands_of_files_runs_under_a_small_descriptor_limit() {
    let pond = TestPond::new();
    let mut expected = Vec::new();
    for day in 0..100 {
        for hour in 0..24 {
            let name = format!("hourly/2025{:02}{:02}/{hour}", day / 28 + 1, day % 28 + 1);
            let bytes = format!("{{\"day\":{day},\"hour\":{hour}}}\n");
            pond.host_file(&name, bytes.as_bytes());
            expected.push(name);
        }
    }
    pond.install(
        "logfile",
        "/etc/many",
        &logfile_config(
            "many",
            &format!("{}/hourly/*/*", pond.host.display()),
            "logs/many",
            "",
        ),
    );
    // Soft and hard: the process cannot raise it.
    let script = format!(
        "ulimit -n 128 && exec {} --pond {} run /etc/many sync --json",
        support::pond_bin(),
        pond.pond.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&support::succeeded(&["sync"], out)).unwrap();
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), expected.len());
    assert!(files.iter().all(|f| f["action"] == "new"), "{report}");
    for name in ["hourly/20250101/0", "hourly/20250416/23"] {
        let pond_path = format!("/logs/many/{}", name.trim_start_matches("hourly/"));
        assert_eq!(
            pond.cat(&pond_path),
            std::fs::read(pond.host.join(name)).unwrap()
        );
    }
}

// Regression: a pattern that matched nothing, or whose base directory did not exist, synced
// "0 changed" with exit 0 and no word even at POND_LOG=info. Now: a warning naming the
// pattern; for a fresh node waiting for its directory, an INFO line; `pond status` shows the
// difference as the node's note (and still exits 0).
#[test]
fn patterns_that_match_nothing_are_said_and_shown_in_status() {
    let tp = TestPond::new();
    std::fs::create_dir_all(tp.host.join("empty")).unwrap();
    for (node, pattern) in [
        ("/etc/nothing", format!("{}/empty/*.log", tp.host.display())),
        (
            "/etc/waiting",
            format!("{}/not-yet/*.log", tp.host.display()),
        ),
    ] {
        tp.install(
            "logfile",
            node,
            &logfile_config("n", &pattern, &format!("logs{node}"), ""),
        );
    }
    let out = tp
        .cmd(&["run", "/etc/nothing", "sync"])
        .env("POND_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARN")
            && stderr.contains("no file matches")
            && stderr.contains("empty/*.log"),
        "{stderr}"
    );
    let out = tp
        .cmd(&["run", "/etc/waiting", "sync"])
        .env("POND_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INFO") && stderr.contains("not-yet does not exist yet: waiting for it"),
        "{stderr}"
    );
    assert!(!stderr.contains("WARN"), "{stderr}");
    let status = tp.output(&["status", "--json"]);
    assert!(
        status.status.success(),
        "notes are not problems: {status:?}"
    );
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    let note = |node: &str| {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["path"] == node)
            .unwrap()["note"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(note("/etc/nothing").contains("no file matches"), "{report}");
    assert!(
        note("/etc/waiting").contains("does not exist yet"),
        "{report}"
    );
    let text = tp.ok(&["status"]);
    assert!(text.contains("note: no file matches"), "{text}");
}
