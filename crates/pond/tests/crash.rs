//! Crash safety: `pond copy` of a large file is SIGKILLed at a random instant, round after round,
//! into one pond. After every kill the pond verifies, holds the round's file either completely
//! (hash equal to `b3sum`) or not at all, and logs no partial transaction; at the end no data file
//! is left for a node the catalog does not have.
//!
//! Reproduce a failure with `POND_CRASH_SEED=<seed printed on stderr>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use support::{SplitMix64, TestPond, b3sum, log_bytes};

const ROUNDS: u64 = 24;
const HOST_LEN: usize = 48 << 20;
const MAX_DELAY_MS: u64 = 400;

fn round_name(round: u64) -> String {
    format!("round-{round:02}.log")
}

// Regression: a writer killed at any instant leaves the pond at its previous commit; the next
// writer cuts the bytes it left behind.
#[test]
fn copy_killed_at_random_instants_leaves_pond_consistent() {
    let seed = support::seed("POND_CRASH_SEED", 0x5eed_c0de_2026_0001);

    // zstd:3 makes a copy take a few hundred ms here, so the kills land before, during and
    // after it (in the middle of frames, of the catalog writes, of the commit's fsyncs).
    let tp = TestPond::with_compression("zstd:3");
    let source = tp.host_file("source.log", &log_bytes(HOST_LEN, seed));
    let expected_hash = b3sum(&source);

    let mut stored = BTreeSet::new();
    for round in 0..ROUNDS {
        let mut rng = SplitMix64(seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let delay = rng.below(MAX_DELAY_MS);
        let context = format!("seed {seed:#x}, round {round}, kill after {delay} ms");
        eprintln!("{context}");

        // A new name per round: a hard link to the same host bytes.
        let name = round_name(round);
        let host = tp.host.join(&name);
        std::fs::hard_link(&source, &host).unwrap();

        let status = support::kill_after(
            tp.cmd(&["copy", host.to_str().unwrap(), "/"]),
            Duration::from_millis(delay),
        )
        .status;

        tp.assert_verify_clean(&context);

        let path = format!("/{name}");
        let entries = tp.json(&["list", "/"])["entries"]
            .as_array()
            .unwrap()
            .clone();
        let entry = entries.iter().find(|e| e["path"] == path.as_str());
        if let Some(entry) = entry {
            assert_eq!(entry["size"], HOST_LEN, "{context}: partial file {entry}");
            assert_eq!(entry["blake3"], expected_hash, "{context}: wrong content");
            assert_eq!(entry["versions"], 1, "{context}");
            stored.insert(round);
        } else {
            assert!(
                !status.success(),
                "{context}: copy exited 0 but {path} is not in the pond"
            );
        }
        // Earlier rounds are untouched.
        let listed: BTreeSet<u64> = entries
            .iter()
            .map(|e| {
                let p = e["path"].as_str().unwrap();
                p["/round-".len()..p.len() - ".log".len()].parse().unwrap()
            })
            .collect();
        assert_eq!(listed, stored, "{context}");

        // One committed copy transaction per stored round, nothing else, numbered 1..=n.
        let log = tp.json(&["log"]);
        let txns = log["transactions"].as_array().unwrap();
        assert_eq!(txns.len(), stored.len(), "{context}: {log}");
        for (i, txn) in txns.iter().enumerate() {
            assert_eq!(txn["txn"], stored.len() - i, "{context}: {log}");
            let summary = txn["summary"].as_str().unwrap();
            let round: u64 = stored.iter().rev().nth(i).copied().unwrap();
            assert_eq!(
                summary,
                format!(
                    "copy {} -> /{}",
                    tp.host.join(round_name(round)).display(),
                    round_name(round)
                ),
                "{context}"
            );
        }
    }
    eprintln!(
        "{} of {ROUNDS} copies committed before the kill",
        stored.len()
    );

    // The next writer cleans up what the last killed copy left behind.
    tp.ok(&["mkdir", "/after"]);
    assert!(
        !tp.pond.join("journal").exists(),
        "journal left after a commit"
    );
    let catalog_files: BTreeSet<i64> = tp.json(&["list", "/**"])["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "file")
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(tp.pond.join("data")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let id: i64 = name.split('.').next().unwrap().parse().unwrap();
        assert!(
            catalog_files.contains(&id),
            "seed {seed:#x}: data/{name} belongs to no file in the catalog ({catalog_files:?})"
        );
        on_disk.insert(id);
    }
    assert_eq!(
        on_disk, catalog_files,
        "seed {seed:#x}: a stored file lost its data"
    );
    let verify: Value = tp.json(&["verify"]);
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["files"], stored.len());
    assert_eq!(verify["bytes"], stored.len() * HOST_LEN);
}
