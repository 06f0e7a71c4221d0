//! `pond maintain`: many small versions are compacted into few frames with every byte, version
//! and hash unchanged; retired data files wait for open snapshots; the budget splits the work
//! into transactions; SIGKILL at random instants leaves the pond consistent and the next writer
//! leaves no stray data file.
//!
//! Reproduce a crash-test failure with `POND_MAINTAIN_SEED=<seed printed on stderr>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;
use support::{SplitMix64, TestPond, log_bytes, pond_path};

/// Appends `content` to the pond file `file` (created if missing) as versions of `piece` bytes,
/// all in one transaction; returns how many versions that made.
fn append_in_pieces(tp: &TestPond, file: &str, content: &[u8], piece: usize) -> usize {
    let pieces: Vec<&[u8]> = content.chunks(piece).collect();
    tp.append_versions(file, &pieces).len()
}

/// `pond show --json` versions: (total_len, blake3) each.
fn versions(tp: &TestPond, file: &str) -> Vec<(u64, String)> {
    tp.json(&["show", file])["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["total_len"].as_u64().unwrap(),
                v["blake3"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Names in `POND/data/`.
fn data_dir(tp: &TestPond) -> BTreeSet<String> {
    std::fs::read_dir(tp.pond.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// The data files the catalog records for every file node, plus their outboards: what `data/`
/// must hold when no retired file waits and no transaction left anything behind.
fn expected_data_dir(tp: &TestPond) -> BTreeSet<String> {
    let pond = tp.library();
    let snapshot = pond.snapshot().unwrap();
    let mut expected = BTreeSet::new();
    let root = snapshot.resolve(&pond_path("/")).unwrap();
    for node in snapshot.walk(&root).unwrap() {
        if node.kind != pond_store::NodeKind::File {
            continue;
        }
        let storage = snapshot.storage(node.id).unwrap();
        assert!(
            storage.retired_generations.is_empty(),
            "{}: retired files left: {storage:?}",
            node.path
        );
        for generation in storage.generations {
            expected.insert(format!("{}.{generation}.dat", node.id));
        }
        expected.insert(format!("{}.obao", node.id));
    }
    expected
}

// Many small versions become a few frames; `cat` of every version, the recorded hashes and
// `verify` are unchanged; the old data file is gone after the run; a second run does nothing.
#[test]
fn maintain_compacts_small_versions_and_keeps_every_byte() {
    let tp = TestPond::new();
    let content = log_bytes(1_500_000, 11);
    let count = append_in_pieces(&tp, "/app.log", &content, 3000);
    assert_eq!(count, 500);
    // Single-version files from `pond copy`: nothing to merge there.
    tp.ok(&["mkdir", "/copies"]);
    for i in 0..4 {
        let host = tp.host_file(&format!("small-{i}.log"), &log_bytes(5000 + i, i as u64));
        tp.ok(&["copy", host.to_str().unwrap(), "/copies"]);
    }
    let before = versions(&tp, "/app.log");
    let txns_before = tp.txns();
    let id = tp.node_id("/app.log");
    assert!(data_dir(&tp).contains(&format!("{id}.0.dat")));

    let report = tp.json(&["maintain"]);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{report}");
    let file = &files[0];
    assert_eq!(file["path"], "/app.log");
    assert_eq!(file["frames_before"], 500);
    // 1,500,000 bytes: one frame (compaction writes frames of up to 4 MiB).
    assert_eq!(file["frames_after"], 1, "{report}");
    assert_eq!(file["raw_bytes"], 1_500_000);
    assert!(
        file["stored_bytes_after"].as_u64().unwrap()
            < file["stored_bytes_before"].as_u64().unwrap(),
        "{report}"
    );
    // One compacting transaction, one that removed the retired file, one that gave the
    // catalog's free pages back.
    assert_eq!(report["txns"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(report["retired"]["removed_files"], 1, "{report}");
    assert_eq!(report["retired"]["waiting"], 0, "{report}");

    assert_eq!(tp.cat("/app.log"), content);
    assert_eq!(
        blake3::hash(&content).to_hex().as_str(),
        before.last().unwrap().1
    );
    assert_eq!(versions(&tp, "/app.log"), before);
    for version in [1usize, 2, 77, 250, 499, 500] {
        let out = tp.output(&["cat", "/app.log", "--version", &version.to_string()]);
        assert!(out.status.success());
        assert_eq!(out.stdout, content[..before[version - 1].0 as usize]);
    }
    tp.assert_verify_clean("after maintain");
    assert!(!data_dir(&tp).contains(&format!("{id}.0.dat")));
    assert_eq!(data_dir(&tp), expected_data_dir(&tp));
    let log = tp.json(&["log"]);
    let summaries: Vec<&str> = log["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries[1].starts_with("maintain: 0 file(s) compacted")
            && summaries[1].ends_with("1 data file(s) removed"),
        "{summaries:?}"
    );
    assert!(
        summaries[0].starts_with("maintain: ")
            && summaries[0].ends_with("free catalog page(s) given back"),
        "{summaries:?}"
    );

    // Nothing left to do: no transaction.
    let again = tp.json(&["maintain"]);
    assert_eq!(again["txns"], serde_json::json!([]), "{again}");
    assert_eq!(again["files"], serde_json::json!([]), "{again}");
    assert_eq!(tp.txns().len(), txns_before.len() + 3);
    let text = tp.ok(&["maintain"]);
    assert!(
        text.contains("0 file(s) compacted; catalog ") && text.ends_with("(no changes)\n"),
        "{text}"
    );
}

// Regression: a snapshot open during `pond maintain` (another process's `pond cat`) keeps its
// data file; the file goes on the first run after the snapshot closes.
#[test]
fn maintain_leaves_retired_files_to_open_snapshots() {
    let tp = TestPond::new();
    let content = log_bytes(400_000, 12);
    append_in_pieces(&tp, "/f.log", &content, 2000);
    let id = tp.node_id("/f.log");
    let old_file = format!("{id}.0.dat");

    let pond = tp.library();
    let snapshot = pond.snapshot().unwrap();
    let node = snapshot.resolve(&pond_path("/f.log")).unwrap();
    let mut reader = snapshot.read(&node, None).unwrap();
    let mut head = vec![0u8; 1000];
    reader.read_exact(&mut head).unwrap();

    let report = tp.json(&["maintain"]);
    assert_eq!(report["files"][0]["frames_after"], 1, "{report}");
    assert_eq!(report["retired"]["removed_files"], 0, "{report}");
    assert_eq!(report["retired"]["waiting"], 1, "{report}");
    assert!(data_dir(&tp).contains(&old_file));
    let text = tp.ok(&["maintain"]);
    assert!(text.contains("1 waiting for open snapshots"), "{text}");
    assert_eq!(tp.cat("/f.log"), content);

    // The old snapshot still reads everything from the retired file.
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    head.extend(rest);
    assert_eq!(head, content);
    drop(reader);
    drop(snapshot);

    let report = tp.json(&["maintain"]);
    assert_eq!(report["retired"]["removed_files"], 1, "{report}");
    assert_eq!(report["retired"]["waiting"], 0, "{report}");
    assert!(!data_dir(&tp).contains(&old_file));
    assert_eq!(data_dir(&tp), expected_data_dir(&tp));
    tp.assert_verify_clean("after the snapshot closed");
}

// `--max-bytes` bounds each transaction; the work goes on in the next one until done.
#[test]
fn maintain_max_bytes_splits_the_work_into_transactions() {
    let tp = TestPond::with_compression("none");
    let a = log_bytes(300_000, 13);
    let b = log_bytes(200_000, 14);
    tp.ok(&["mkdir", "/logs"]);
    append_in_pieces(&tp, "/logs/a.log", &a, 1000);
    append_in_pieces(&tp, "/logs/b.log", &b, 1000);
    let report = tp.json(&["maintain", "/logs", "--max-bytes", "100000"]);
    let txns = report["txns"].as_array().unwrap();
    assert!(txns.len() >= 5, "{report}");
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{report}");
    assert_eq!(files[0]["path"], "/logs/a.log");
    assert_eq!(files[0]["frames_before"], 300);
    assert_eq!(files[1]["frames_before"], 200);
    for file in files {
        assert!(file["frames_after"].as_u64().unwrap() <= 3, "{report}");
    }
    assert_eq!(tp.cat("/logs/a.log"), a);
    assert_eq!(tp.cat("/logs/b.log"), b);
    tp.assert_verify_clean("after a budgeted maintain");
    assert_eq!(data_dir(&tp), expected_data_dir(&tp));
    // Usage errors are usage errors.
    let (code, err) = tp.fails(&["maintain", "--max-bytes", "lots"]);
    assert_eq!(code, 2, "{err}");
}

// Regression: `pond maintain` killed at any instant leaves the pond at a commit: every byte and
// version is there, verify is clean, and after the next full run no data file is left over.
#[test]
fn maintain_killed_at_random_instants_leaves_pond_consistent() {
    let seed = support::seed("POND_MAINTAIN_SEED", 0x5eed_c0de_2026_0002);
    let tp = TestPond::with_compression("zstd:3");
    let mut content = Vec::new();
    let mut killed = 0;
    for round in 0..10u64 {
        let mut rng = SplitMix64(seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let more = log_bytes(400_000, seed.wrapping_add(round));
        append_in_pieces(&tp, "/follow.log", &more, 2500);
        content.extend_from_slice(&more);
        let expected_versions = versions(&tp, "/follow.log");

        let delay = rng.below(300);
        let context = format!("seed {seed:#x}, round {round}, kill after {delay} ms");
        eprintln!("{context}");
        let run = support::kill_after(
            tp.cmd(&["maintain", "--max-bytes", "65536"]),
            Duration::from_millis(delay),
        );
        if !run.status.success() {
            killed += 1;
        }

        tp.assert_verify_clean(&context);
        assert!(
            tp.cat("/follow.log") == content,
            "{context}: content differs"
        );
        assert_eq!(versions(&tp, "/follow.log"), expected_versions, "{context}");
    }
    let maintained = tp.json(&["log"])["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["summary"].as_str().unwrap().starts_with("maintain:"))
        .count();
    eprintln!("{killed} of 10 runs were killed before they finished; {maintained} committed");

    // The next writer cleans up whatever the last kill left; a full run leaves exactly the
    // recorded data files.
    let report: Value = tp.json(&["maintain"]);
    assert_eq!(report["retired"]["waiting"], 0, "{report}");
    assert!(!tp.pond.join("journal").exists());
    assert_eq!(data_dir(&tp), expected_data_dir(&tp), "seed {seed:#x}");
    tp.assert_verify_clean("after the last full run");
    assert!(tp.cat("/follow.log") == content);
    let storage = tp
        .library()
        .snapshot()
        .unwrap()
        .storage(tp.node_id("/follow.log"))
        .unwrap();
    assert!(
        storage.frames <= 64,
        "seed {seed:#x}: {storage:?} after a full run (1,600 versions)"
    );
}
