//! Store-level properties: versions, hashes, outboards, rollback, renames, locking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use pond_store::{Compression, Pond, StoreError};
use proptest::prelude::*;
use std::io::Read;
use std::time::Duration;
use support::{NO_WAIT, assert_verify_clean, new_pond, path, text_bytes};

/// Mostly text-like bytes so zstd has something to do.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    text_bytes(len, seed, |i| i % 7 == 0)
}

/// Appends each slice in its own transaction, then checks every version: content, root equal to
/// `blake3::hash`, every block verifiable against the outboard, and `verify` clean.
fn check_versions(pond: &Pond, appends: &[Vec<u8>]) {
    let file = path("/f");
    let mut txn = pond.begin(vec!["test".into()], NO_WAIT).unwrap();
    txn.create_file(&file).unwrap();
    txn.commit("create").unwrap();
    let mut all = Vec::new();
    for chunk in appends {
        let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
        let node = txn.resolve(&file).unwrap();
        let version = txn.append(&node, &mut chunk.as_slice(), None).unwrap();
        all.extend_from_slice(chunk);
        assert_eq!(version.total_len, all.len() as u64);
        assert_eq!(version.root, blake3::hash(&all));
        assert_eq!(version.segment_hash, Some(blake3::hash(chunk)));
        txn.commit("append").unwrap();
    }
    let snapshot = pond.snapshot().unwrap();
    let node = snapshot.resolve(&file).unwrap();
    let mut end = 0usize;
    for (version, chunk) in snapshot.versions(node.id).unwrap().iter().zip(appends) {
        end += chunk.len();
        let mut content = Vec::new();
        snapshot
            .read(&node, Some(version.version))
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content, all[..end], "version {}", version.version);
        assert_eq!(version.root, blake3::hash(&content));
        let mut outboard = snapshot.outboard(node.id, version).unwrap();
        for block in 0..pond_hash::block_count(end as u64) {
            let start = (block * pond_hash::BLOCK_LEN) as usize;
            let stop = (start + pond_hash::BLOCK_LEN as usize).min(end);
            pond_hash::verify_block(
                end as u64,
                &version.root,
                &mut outboard,
                block,
                &content[start..stop],
            )
            .unwrap();
        }
    }
    assert_verify_clean(&snapshot);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Random append sequences through real transactions, both compression modes.
    #[test]
    fn appended_versions_read_back_and_hash_like_blake3(
        sizes in proptest::collection::vec(
            prop_oneof![0usize..100, 1020usize..1030, 16380usize..16390, 40_000usize..80_000],
            1..6,
        ),
        seed in any::<u64>(),
        compress in any::<bool>(),
    ) {
        let compression = if compress { Compression::Zstd(1) } else { Compression::None };
        let (_dir, pond) = new_pond(compression);
        let appends: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(i, &n)| bytes(n, seed + i as u64)).collect();
        check_versions(&pond, &appends);
    }

    /// Any byte range reads back exactly, across frame boundaries.
    #[test]
    fn ranges_read_back_exactly(start in 0u64..3_000_000, len in 0u64..1_500_000) {
        let (_dir, pond) = shared_big_pond();
        let snapshot = pond.snapshot().unwrap();
        let node = snapshot.resolve(&path("/big")).unwrap();
        let data = big_content();
        let got = snapshot.read_bytes(node.id, start, start + len).unwrap();
        let from = (start as usize).min(data.len());
        let to = ((start + len) as usize).min(data.len());
        prop_assert_eq!(got, data[from..to].to_vec());
    }
}

fn big_content() -> Vec<u8> {
    bytes(2_600_000, 99)
}

fn shared_big_pond() -> (tempfile::TempDir, Pond) {
    let (dir, pond) = new_pond(Compression::Zstd(1));
    let data = big_content();
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    let node = txn.create_file(&path("/big")).unwrap();
    // Two versions so a frame boundary falls mid-content and at a version boundary.
    txn.append(&node, &mut &data[..1_234_567], None).unwrap();
    txn.append(&node, &mut &data[1_234_567..], None).unwrap();
    txn.commit("big").unwrap();
    (dir, pond)
}

#[test]
fn boundary_sizes_hash_like_b3sum() {
    // Sizes from the spec: 0, 1, 1024, 1025, and 16 KiB x 2^k up to 1 MiB, plus one more byte.
    let mut sizes = vec![0usize, 1, 1024, 1025];
    for k in 0..=6 {
        sizes.push((16 * 1024) << k);
        sizes.push(((16 * 1024) << k) + 1);
    }
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    for size in sizes {
        let data = bytes(size, size as u64);
        let node = txn.create_file(&path(&format!("/s{size}"))).unwrap();
        let version = txn.append(&node, &mut data.as_slice(), None).unwrap();
        assert_eq!(version.root, blake3::hash(&data), "size {size}");
    }
    txn.commit("sizes").unwrap();
}

#[test]
fn appends_ending_on_chunk_and_block_boundaries_keep_standard_roots() {
    let (_dir, pond) = new_pond(Compression::None);
    let appends: Vec<Vec<u8>> = [1024, 1024, 14 * 1024, 16 * 1024, 1, 16383, 32 * 1024]
        .iter()
        .enumerate()
        .map(|(i, &n)| bytes(n, i as u64))
        .collect();
    check_versions(&pond, &appends);
}

#[test]
fn dropped_transaction_leaves_no_trace() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    let node = txn.create_file(&path("/a")).unwrap();
    txn.append(&node, &mut &b"committed\n"[..], None).unwrap();
    txn.commit("one").unwrap();

    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    txn.append(&node, &mut &bytes(200_000, 1)[..], None)
        .unwrap();
    txn.create_file(&path("/b")).unwrap();
    drop(txn);

    let snapshot = pond.snapshot().unwrap();
    assert!(snapshot.lookup(&path("/b")).unwrap().is_none());
    assert_eq!(snapshot.file_len(node.id).unwrap(), 10);
    assert_eq!(snapshot.last_txn().unwrap(), 1);
    let data_len = std::fs::metadata(pond.dir().join(format!("data/{}.0.dat", node.id)))
        .unwrap()
        .len();
    assert!(
        data_len < 100,
        "uncommitted bytes were cut ({data_len} left)"
    );
    assert!(!pond.dir().join("journal").exists());
}

#[test]
fn short_source_stores_nothing_and_the_transaction_goes_on() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    let node = txn.create_file(&path("/a")).unwrap();
    let err = txn
        .append(&node, &mut &b"only ten b"[..], Some(20))
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::ShortRead {
            expected: 20,
            read: 10
        }
    ));
    assert!(txn.latest_version(node.id).unwrap().is_none());
    txn.append(&node, &mut &b"good\n"[..], Some(5)).unwrap();
    txn.commit("ok").unwrap();
    let snapshot = pond.snapshot().unwrap();
    assert_eq!(snapshot.read_bytes(node.id, 0, 100).unwrap(), b"good\n");
    assert_verify_clean(&snapshot);
}

#[test]
fn rename_keeps_node_id_and_history() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    txn.mkdir(&path("/logs/old"), true).unwrap();
    let node = txn.create_file(&path("/logs/app.log")).unwrap();
    txn.append(&node, &mut &b"v1\n"[..], None).unwrap();
    txn.commit("create").unwrap();
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    let moved = txn
        .rename(&path("/logs/app.log"), &path("/logs/old/app.log.1"))
        .unwrap();
    txn.append(&moved, &mut &b"v2\n"[..], None).unwrap();
    txn.commit("rotate").unwrap();
    let snapshot = pond.snapshot().unwrap();
    let found = snapshot.resolve(&path("/logs/old/app.log.1")).unwrap();
    assert_eq!(found.id, node.id);
    assert_eq!(snapshot.versions(found.id).unwrap().len(), 2);
    assert_eq!(
        snapshot.path_of(node.id).unwrap(),
        path("/logs/old/app.log.1")
    );
    assert!(snapshot.lookup(&path("/logs/app.log")).unwrap().is_none());
    let err = pond
        .begin(vec![], NO_WAIT)
        .unwrap()
        .rename(&path("/logs"), &path("/logs/old/x"))
        .unwrap_err();
    assert!(matches!(err, StoreError::MoveIntoItself { .. }));
}

#[test]
fn second_writer_times_out_naming_the_holder_pid() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let _held = pond.begin(vec![], NO_WAIT).unwrap();
    let err = pond.begin(vec![], Duration::from_millis(100)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Locked { .. }), "{text}");
    assert!(text.contains(&std::process::id().to_string()), "{text}");
    // Readers are not blocked by the writer.
    pond.snapshot().unwrap().last_txn().unwrap();
}

#[test]
fn snapshot_does_not_see_later_commits() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let before = pond.snapshot().unwrap();
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    txn.mkdir(&path("/new"), false).unwrap();
    txn.commit("mkdir").unwrap();
    assert!(before.lookup(&path("/new")).unwrap().is_none());
    assert!(
        pond.snapshot()
            .unwrap()
            .lookup(&path("/new"))
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_change_free_transaction_uses_no_number() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let txn = pond.begin(vec![], NO_WAIT).unwrap();
    assert_eq!(txn.commit("nothing").unwrap(), None);
    assert_eq!(pond.snapshot().unwrap().last_txn().unwrap(), 0);
}

#[test]
fn node_state_is_transactional() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    let node = txn.mkdir(&path("/n"), false).unwrap();
    txn.set_state(node.id, "cursor", b"42").unwrap();
    txn.commit("state").unwrap();
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    txn.set_state(node.id, "cursor", b"99").unwrap();
    txn.rollback().unwrap();
    assert_eq!(
        pond.snapshot().unwrap().state(node.id, "cursor").unwrap(),
        Some(b"42".to_vec())
    );
}

#[test]
fn opening_something_that_is_not_a_pond_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Pond::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is not a pond"), "{err}");
    Pond::init(dir.path(), Compression::None, pond_store::Sharing::Private).unwrap();
    let err = Pond::init(dir.path(), Compression::None, pond_store::Sharing::Private).unwrap_err();
    assert!(err.to_string().contains("already a pond"), "{err}");
}

#[test]
fn compression_settings_parse() {
    assert_eq!(Compression::parse("none").unwrap(), Compression::None);
    assert_eq!(Compression::parse("zstd").unwrap(), Compression::Zstd(1));
    assert_eq!(Compression::parse("zstd:9").unwrap(), Compression::Zstd(9));
    for bad in ["zstd:0", "zstd:23", "gzip", "zstd:x", ""] {
        assert!(Compression::parse(bad).is_err(), "{bad}");
    }
}

// `View::selects` (used where walking the namespace would cost the whole pond) agrees with
// `View::select` on which files a pattern takes: globs, `**`, a plain directory, a plain file.
#[test]
fn selects_agrees_with_select() {
    let (_dir, pond) = new_pond(Compression::None);
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    let files = [
        "/logs/hl/20250101/0",
        "/logs/hl/20250101/1",
        "/logs/hl/20250102/0",
        "/logs/app/app.json",
        "/logs/app/app-2025.json",
        "/other/x",
    ];
    for file in files {
        let p = path(file);
        txn.mkdir(&p.parent().unwrap(), true).unwrap();
        txn.create_file(&p).unwrap();
    }
    txn.commit("files").unwrap();
    let snapshot = pond.snapshot().unwrap();
    for pattern in [
        "logs/hl/**",
        "/logs/hl/*/0",
        "/logs/app/app-*.json",
        "/logs/app",
        "/logs/app/app.json",
        "/logs/{hl,app}/**",
        "/nothing/**",
    ] {
        let selected: Vec<String> = snapshot
            .select(pattern)
            .unwrap()
            .into_iter()
            .filter(|n| n.kind == pond_store::NodeKind::File)
            .map(|n| n.path.to_string())
            .collect();
        let by_path: Vec<String> = files
            .iter()
            .filter(|f| pond_store::View::selects(pattern, &path(f)).unwrap())
            .map(|f| f.to_string())
            .collect();
        let mut selected_sorted = selected.clone();
        selected_sorted.sort();
        let mut by_path_sorted = by_path.clone();
        by_path_sorted.sort();
        assert_eq!(selected_sorted, by_path_sorted, "{pattern}");
    }
}
