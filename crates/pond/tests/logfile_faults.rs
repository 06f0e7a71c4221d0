//! `logfile` scenarios of faults: unreadable files, files changing during a sync or between
//! listing and reading, and a sync SIGKILLed at random instants. Driven through
//! [`support::logs`], whose doc says what every step checks.
//!
//! Tests run as root here, where mode 000 does not stop reads: the permission test then runs
//! `pond` as uid 65534 (`nobody`) so that the real `EACCES` path is exercised.
//!
//! Needs `b3sum` on PATH (`make test` installs it under `.tools/`). The crash test's kill
//! instants come from `LOGFILE_CRASH_SEED` (hex; printed on stderr).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::logs::{Logs, NODE, bytes_of, changed, lines, rel, s};
use support::{SplitMix64, TestPond, b3sum_many};

/// The unprivileged user the permission test runs `pond` as when the test runs as root.
const NOBODY: u32 = 65534;

// ---------------------------------------------------------------------------------------------
// 9. Unreadable files

/// Whether a mode-000 file can still be read here (root, or CAP_DAC_OVERRIDE).
fn permissions_do_not_stop_reads(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::read(&probe).is_ok();
    std::fs::remove_file(&probe).unwrap();
    readable
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn unreadable_files_are_reported_by_name_and_the_rest_is_mirrored() {
    let mut logs = Logs::flat("");
    if permissions_do_not_stop_reads(logs.tp.tmp.path()) {
        // Running as root: mode 000 would not stop `pond`. Run every `pond` command of this
        // test as an unprivileged user instead, so that the real EACCES path is exercised.
        chown_tree(logs.tp.tmp.path(), NOBODY);
        logs.tp.run_as = Some(NOBODY);
        let probe = logs.cmd(&["log", "--json"]).output();
        match probe {
            Ok(out) if out.status.success() => {}
            failed => {
                support::skipped(
                    "unreadable_files_are_reported_by_name_and_the_rest_is_mirrored",
                    &format!(
                        "running as root and pond cannot run as uid {NOBODY} here (is the temp \
                         directory {} reachable by that user?): {}",
                        logs.tp.tmp.path().display(),
                        match failed {
                            Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                            Err(e) => e.to_string(),
                        }
                    ),
                );
                return;
            }
        }
    }
    logs.write("app.log", &lines(10_000, 130));
    logs.write("app-1.log", &lines(20_000, 131));
    logs.write("app-2.log", &lines(30_000, 132));
    set_mode(&logs.host("app-2.log"), 0o000);
    logs.skip.insert(logs.host("app-2.log"));

    let out = logs.sync_output(&[]);
    assert!(
        !out.status.success(),
        "an unreadable file makes the run fail"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(s(&logs.host("app-2.log"))),
        "the unreadable file is named: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        changed(&report),
        BTreeMap::from([
            ("app.log".to_string(), "new".to_string()),
            ("app-1.log".to_string(), "new".to_string()),
        ]),
        "{report}"
    );
    assert!(report["txn"].is_u64(), "the rest is committed: {report}");
    logs.check_mirror("after a run with an unreadable archive");

    // A tracked file that becomes unreadable while it grows: reported, left as it was.
    logs.append("app.log", &lines(1_000, 133));
    set_mode(&logs.host("app.log"), 0o000);
    logs.write("app-3.log", &lines(4_000, 134));
    let out = logs.sync_output(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(s(&logs.host("app.log"))), "{stderr}");
    assert!(stderr.contains(s(&logs.host("app-2.log"))), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        changed(&report),
        BTreeMap::from([("app-3.log".to_string(), "new".to_string())]),
        "{report}"
    );
    assert_eq!(logs.segments("app.log"), [10_000]);

    // Readable again: everything catches up.
    set_mode(&logs.host("app.log"), 0o644);
    set_mode(&logs.host("app-2.log"), 0o644);
    logs.skip.clear();
    logs.step(
        "readable again",
        &[("app.log", "appended"), ("app-2.log", "new")],
    );
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// 9. Files changing during a sync

#[test]
fn files_changing_during_syncs_never_tear() {
    let mut logs = Logs::flat("");
    logs.dry_run_first = false;
    logs.write("app.log", &lines(50_000, 140));
    logs.step("first", &[("app.log", "new")]);

    // Archive `i`'s bytes (archives are written under another name, then renamed into place).
    let archive = |i: u64| lines(3_000 + (i as usize * 911) % 20_000, 1_000 + i);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let base = logs.base.clone();
        std::thread::spawn(move || {
            let mut active = OpenOptions::new()
                .append(true)
                .open(base.join("app.log"))
                .unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                active.write_all(&lines(300, 2_000 + i)).unwrap();
                if i.is_multiple_of(5) {
                    let tmp = base.join(format!("tmp-{i}"));
                    std::fs::write(&tmp, archive(i)).unwrap();
                    std::fs::rename(&tmp, base.join(format!("app-{i:05}.log"))).unwrap();
                }
                if i.is_multiple_of(7) && i > 20 {
                    // Archives vanish too, some right after they appeared.
                    let _ = std::fs::remove_file(base.join(format!("app-{:05}.log", i - 5)));
                    let _ = std::fs::remove_file(base.join(format!("app-{:05}.log", i - 20)));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            i
        })
    };
    let mut last_len = 50_000;
    for round in 0..12 {
        let report = logs.sync_report(&[]);
        let host_now = logs.read("app.log");
        let stored = logs.cat(&Logs::pond("app.log"));
        assert!(
            stored.len() >= last_len && host_now.starts_with(&stored),
            "round {round}: the mirror of the growing file is not a prefix of it ({} bytes)",
            stored.len()
        );
        last_len = stored.len();
        for (name, entry) in logs.mirrored() {
            if let Some(i) = name
                .strip_prefix("app-")
                .and_then(|n| n.strip_suffix(".log"))
            {
                let expected = archive(i.parse().unwrap());
                assert_eq!(
                    entry["blake3"].as_str().unwrap(),
                    blake3::hash(&expected).to_hex().as_str(),
                    "round {round}: torn archive {name} ({report})"
                );
            }
        }
        let verify = logs.output(&["verify"]);
        assert!(verify.status.success(), "round {round}: verify");
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 20, "the writer ran ({writes} writes)");

    // Quiet again: one more sync mirrors everything exactly.
    logs.sync_report(&[]);
    for row in logs.status_rows() {
        if row["on_host"] == false {
            let name = rel(row["path"].as_str().unwrap());
            let i: u64 = name["app-".len()..name.len() - ".log".len()]
                .parse()
                .unwrap();
            logs.kept.insert(name, archive(i));
        }
    }
    logs.check_mirror("after the writer stopped");
    logs.dry_run_first = true;
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// SIGKILL during sync

/// A change to the host files.
type HostChange<'a> = &'a dyn Fn(&Logs);

#[test]
fn sync_killed_at_random_instants_then_rerun_mirrors_exactly() {
    let seed = support::seed("LOGFILE_CRASH_SEED", 0x10f1_1e5e_ed00_0001);
    let mut rng = SplitMix64(seed);
    // zstd:3 makes the stores slow enough for the kills to land before, during and after them.
    let mut logs = Logs::new_in(
        TestPond::with_compression("zstd:3"),
        "",
        "app.log",
        Some("app-*.log"),
        "",
    );
    logs.dry_run_first = false;

    // Phase 1: a 64 MiB new file. Phase 2: missed bytes, a rotation, a 24 MiB new file. Once a
    // round has committed, the next one gets 24 MiB more to append: every sync has work to do.
    let chunk = lines(24 << 20, 151);
    let phases: [(&str, HostChange); 2] = [
        ("64 MiB new file", &|l: &Logs| {
            l.write("app.log", &lines(64 << 20, 150))
        }),
        ("missed bytes, rotation, 24 MiB new file", &|l: &Logs| {
            l.append("app.log", &chunk[..3 << 20]);
            l.rename("app.log", "app-1.log");
            l.write("app.log", &chunk);
        }),
    ];
    let mut outcomes = BTreeMap::<&str, usize>::new();
    // How long a sync takes per MiB to store (beyond a fixed 50 ms), learnt from the syncs that
    // finish: the kill instants are drawn from 0..150% of the expected duration.
    let mut ms_per_mib = 8u64;
    for ((phase, mutate), first_mib) in phases.into_iter().zip([64, 27]) {
        mutate(&logs);
        let mut pending_mib = first_mib;
        for round in 0..5u64 {
            if pending_mib == 0 {
                logs.append("app.log", &chunk);
                pending_mib = 24;
            }
            let host = logs.host_files();
            let delay = rng.below((50 + ms_per_mib * pending_mib) * 3 / 2);
            let ctx = format!("seed {seed:#x}, {phase}, round {round}, kill after {delay} ms");
            let before: BTreeMap<String, Value> = logs.mirrored();
            let txns = logs.tp.txns().len();
            let run = support::kill_after(
                logs.cmd(&["run", NODE, "sync", "--json"]),
                Duration::from_millis(delay),
            );
            let finished = run.finished_after.is_some();
            if let Some(took) = run.finished_after {
                let ms = took.as_millis() as u64;
                ms_per_mib = (ms.saturating_sub(50) / pending_mib).max(1);
            }
            let status = run.status;
            let verify = logs.output(&["verify"]);
            assert!(
                verify.status.success(),
                "{ctx}: verify after the kill: {}",
                String::from_utf8_lossy(&verify.stdout)
            );
            // All or nothing: the previous commit, or the sync's.
            let after = logs.mirrored();
            let committed = logs.tp.txns().len();
            let outcome = if committed == txns {
                assert_eq!(after, before, "{ctx}: no commit, yet the mirror changed");
                assert!(
                    !finished || !status.success(),
                    "{ctx}: exited 0 without a commit"
                );
                "killed, nothing committed"
            } else {
                assert_eq!(committed, txns + 1, "{ctx}");
                let paths: Vec<&Path> = host.values().map(PathBuf::as_path).collect();
                let hashes = b3sum_many(&paths);
                for (name, path) in &host {
                    assert_eq!(
                        after[name]["blake3"].as_str(),
                        Some(hashes[path].as_str()),
                        "{ctx}: committed but {name} is not the host file"
                    );
                }
                if finished {
                    "finished"
                } else {
                    "killed after the commit"
                }
            };
            if outcome != "killed, nothing committed" {
                pending_mib = 0;
            }
            eprintln!("{ctx}: {outcome} ({status})");
            *outcomes.entry(outcome).or_default() += 1;
        }
        logs.sync_report(&[]);
        logs.check_mirror(&format!("{phase}: rerun after the kills"));
    }
    eprintln!("crash outcomes: {outcomes:?}");
    logs.dry_run_first = true;
    logs.idle("idle after the kills");
}

// ---------------------------------------------------------------------------------------------
// 9. Files that shrink, grow, vanish or are replaced between listing and reading

#[test]
fn files_changing_between_listing_and_reading() {
    let mut logs = Logs::flat("");
    logs.dry_run_first = false;
    // New files are stored in path order: the big one first, the others while it is stored.
    logs.write("app-0-big.log", &lines(48 << 20, 170));
    let original: BTreeMap<&str, Vec<u8>> = ["shrink", "grow", "vanish", "replaced"]
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, lines(100_000 + i, 171 + i as u64)))
        .collect();
    for (name, bytes) in &original {
        logs.write(&format!("app-z-{name}.log"), bytes);
    }
    let data = logs.tp.pond.join("data");
    let mut child = logs
        .cmd(&["run", NODE, "sync", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first data file exists the host files were listed and the big one is being
    // stored: change the others now.
    let started = std::time::Instant::now();
    while std::fs::read_dir(&data).map_or(0, |d| d.count()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sync never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    OpenOptions::new()
        .write(true)
        .open(logs.host("app-z-shrink.log"))
        .unwrap()
        .set_len(10)
        .unwrap();
    logs.append("app-z-grow.log", &lines(50_000, 180));
    logs.remove("app-z-vanish.log");
    logs.remove("app-z-replaced.log");
    logs.write("app-z-replaced.log", &lines(70_000, 181));
    let in_time = child.try_wait().unwrap().is_none();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the run must not fail: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        in_time,
        "the sync ended before the files were changed; the test needs a slower store"
    );
    assert_eq!(
        changed(&report),
        BTreeMap::from([
            ("app-0-big.log".to_string(), "new".to_string()),
            ("app-z-grow.log".to_string(), "new".to_string()),
        ]),
        "only what could be read as listed is stored: {report}"
    );
    assert_eq!(bytes_of(&report, "app-z-grow.log"), 100_001);
    let grow = logs.cat(&Logs::pond("app-z-grow.log"));
    assert!(
        grow == original["grow"],
        "the grown file is stored as listed"
    );
    assert!(logs.output(&["verify"]).status.success());
    for name in ["shrink", "vanish", "replaced"] {
        assert!(
            !logs.mirrored().contains_key(&format!("app-z-{name}.log")),
            "app-z-{name}.log: nothing torn is stored"
        );
    }

    // The next run catches up.
    let report = logs.step(
        "next run",
        &[
            ("app-z-shrink.log", "new"),
            ("app-z-grow.log", "appended"),
            ("app-z-replaced.log", "new"),
        ],
    );
    assert_eq!(bytes_of(&report, "app-z-shrink.log"), 10);
    assert_eq!(bytes_of(&report, "app-z-grow.log"), 50_000);
    logs.dry_run_first = true;
    logs.idle("rerun");
}
