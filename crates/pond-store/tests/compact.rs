//! Compaction: merged frames keep every version's bytes, hashes and the outboard; readers of
//! older snapshots keep reading while retired files wait; format 1 ponds upgrade in place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use pond_store::{
    CompactLimits, Compression, Node, Pond, PondPath, Snapshot, StoreError, Transaction, Version,
};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::io::Read;
use support::{assert_verify_clean, begin, data_dir, new_pond, path, text_bytes};

const KIB: usize = 1024;

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    text_bytes(len, seed, |i| i % 61 == 60)
}

/// A file and what it must hold: every version's record and the content.
#[derive(Clone)]
struct Model {
    node: Node,
    versions: Vec<Version>,
    content: Vec<u8>,
}

impl Model {
    fn create(pond: &Pond, name: &str) -> Self {
        let mut txn = begin(pond);
        let node = txn.create_file(&path(name)).unwrap();
        txn.commit("create").unwrap();
        Self {
            node,
            versions: Vec::new(),
            content: Vec::new(),
        }
    }

    fn append(&mut self, txn: &mut Transaction, data: &[u8]) {
        let version = txn.append(&self.node, &mut &data[..], None).unwrap();
        self.content.extend_from_slice(data);
        assert_eq!(version.root, blake3::hash(&self.content));
        self.versions.push(version);
    }

    fn outboard(&self, pond: &Pond) -> Vec<u8> {
        std::fs::read(pond.dir().join(format!("data/{}.obao", self.node.id))).unwrap_or_default()
    }

    /// The catalog's versions are the ones the appends returned (length, root, segment hash,
    /// frontier); `verify` is clean (it rehashes the content and checks every version boundary
    /// and the outboard); a sample of versions (first, last, a dozen between) reads back whole.
    fn check(&self, snapshot: &Snapshot) {
        assert_eq!(snapshot.versions(self.node.id).unwrap(), self.versions);
        assert_verify_clean(snapshot);
        let step = (self.versions.len() / 12).max(1);
        let sample = self
            .versions
            .iter()
            .step_by(step)
            .chain(self.versions.last());
        for version in sample {
            let mut got = Vec::new();
            snapshot
                .read(&self.node, Some(version.version))
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(got.len() as u64, version.total_len);
            assert!(
                got == self.content[..got.len()],
                "version {}",
                version.version
            );
            assert_eq!(blake3::hash(&got), version.root);
        }
    }

    /// Random ranges read back exactly, and every 16 KiB block of the latest version verifies
    /// against its root through the outboard.
    fn check_ranges_and_outboard(&self, snapshot: &Snapshot, seed: u64) {
        let len = self.content.len() as u64;
        let mut state = seed | 1;
        for _ in 0..24 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let start = (state >> 11) % (len + 1);
            let end = start + (state >> 40) % (len - start + 1);
            let got = snapshot.read_bytes(self.node.id, start, end).unwrap();
            assert!(
                got == self.content[start as usize..end as usize],
                "{start}..{end}"
            );
        }
        let Some(latest) = self.versions.last() else {
            return;
        };
        let mut outboard = snapshot.outboard(self.node.id, latest).unwrap();
        for block in 0..pond_hash::block_count(len) {
            let from = (block * pond_hash::BLOCK_LEN) as usize;
            let to = (from + pond_hash::BLOCK_LEN as usize).min(len as usize);
            pond_hash::verify_block(
                len,
                &latest.root,
                &mut outboard,
                block,
                &self.content[from..to],
            )
            .unwrap();
        }
    }
}

/// Data files on disk are exactly the generations the catalog records, plus the outboard.
fn assert_no_stray_files(pond: &Pond, nodes: &[&Node]) {
    let snapshot = pond.snapshot().unwrap();
    let mut expected = BTreeSet::new();
    for node in nodes {
        let storage = snapshot.storage(node.id).unwrap();
        assert!(
            storage.retired_generations.is_empty(),
            "{storage:?} still has retired files"
        );
        for generation in storage.generations {
            expected.insert(format!("{}.{generation}.dat", node.id));
        }
        if snapshot.file_len(node.id).unwrap() >= 32 * 1024 {
            expected.insert(format!("{}.obao", node.id));
        }
    }
    let on_disk: BTreeSet<String> = data_dir(pond)
        .into_iter()
        .filter(|n| !n.ends_with(".obao") || expected.contains(n))
        .collect();
    assert_eq!(on_disk, expected);
}

/// `count` versions of 3 KiB: one frame each.
fn tiny_versions(pond: &Pond, model: &mut Model, count: usize, seed: u64) {
    let mut txn = begin(pond);
    for i in 0..count {
        model.append(&mut txn, &bytes(3 * KIB, seed + i as u64));
    }
    txn.commit("tiny appends").unwrap();
}

// Many one-frame versions become full frames spanning versions; the old generation goes once
// the transaction that retired it has committed and a later writer collects it.
#[test]
fn many_tiny_versions_compact_into_full_frames() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut model = Model::create(&pond, "/f");
    tiny_versions(&pond, &mut model, 1500, 1);
    let id = model.node.id;
    let outboard = model.outboard(&pond);
    let before = pond.snapshot().unwrap().storage(id).unwrap();
    assert_eq!(before.frames, 1500);

    let mut txn = begin(&pond);
    let report = txn
        .compact(&model.node, &CompactLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(report.frames_before, 1500);
    // 4 MiB and the rest.
    assert_eq!(report.frames_after, 2);
    assert_eq!(report.raw_bytes, 1500 * 3 * KIB as u64);
    assert_eq!(report.stored_bytes_before, before.stored_bytes);
    assert!(report.stored_bytes_after < report.stored_bytes_before);
    // Nothing left to do, in the same transaction.
    assert_eq!(
        txn.compact(&model.node, &CompactLimits::default()).unwrap(),
        None
    );
    txn.commit("compact").unwrap();

    let snapshot = pond.snapshot().unwrap();
    let after = snapshot.storage(id).unwrap();
    assert_eq!(after.frames, 2);
    assert_eq!(after.stored_bytes, report.stored_bytes_after);
    assert_eq!(after.generations, [1]);
    assert_eq!(after.retired_generations, [0]);
    model.check(&snapshot);
    model.check_ranges_and_outboard(&snapshot, 7);
    assert_eq!(model.outboard(&pond), outboard);
    drop(snapshot);

    // The old generation is still on disk until a writer collects it with no snapshot open.
    assert!(data_dir(&pond).contains(&format!("{id}.0.dat")));
    let mut txn = begin(&pond);
    let garbage = txn.collect_garbage().unwrap();
    assert_eq!(garbage.removed_files, 1);
    assert_eq!(garbage.waiting, 0);
    assert!(garbage.freed_bytes >= before.stored_bytes);
    assert!(txn.commit("collect").unwrap().is_some());
    assert_no_stray_files(&pond, &[&model.node]);

    // Appends go on in the new generation and read back.
    let mut txn = begin(&pond);
    model.append(&mut txn, b"after compaction\n");
    txn.commit("append").unwrap();
    model.check(&pond.snapshot().unwrap());
}

// Regression: a snapshot opened before a compaction commits keeps reading the old frames while
// later writers compact and try to collect; the retired file goes only after it is dropped.
#[test]
fn snapshot_from_before_compaction_reads_old_content_until_dropped() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut model = Model::create(&pond, "/f");
    tiny_versions(&pond, &mut model, 400, 2);
    let id = model.node.id;
    let old_file = format!("{id}.0.dat");

    let old = pond.snapshot().unwrap();
    let mut streaming = old.read(&model.node, None).unwrap();
    let mut head = vec![0u8; 10_000];
    streaming.read_exact(&mut head).unwrap();

    let mut txn = begin(&pond);
    txn.compact(&model.node, &CompactLimits::default())
        .unwrap()
        .unwrap();
    txn.commit("compact").unwrap();
    model.check(&old);
    assert_eq!(old.storage(id).unwrap().frames, 400);

    // A second writer: nothing more to compact, and the retired file must wait.
    let mut txn = begin(&pond);
    assert_eq!(
        txn.compact(&model.node, &CompactLimits::default()).unwrap(),
        None
    );
    let garbage = txn.collect_garbage().unwrap();
    assert_eq!(garbage.waiting, 1);
    assert_eq!(garbage.removed_files, 0);
    assert_eq!(txn.commit("nothing").unwrap(), None);
    assert!(data_dir(&pond).contains(&old_file));
    model.check(&old);

    // The snapshot is gone but a reader it handed out still streams the old frames.
    drop(old);
    let mut txn = begin(&pond);
    assert_eq!(txn.collect_garbage().unwrap().waiting, 1);
    drop(txn);
    let mut rest = Vec::new();
    streaming.read_to_end(&mut rest).unwrap();
    head.extend(rest);
    assert!(head == model.content);
    drop(streaming);

    let mut txn = begin(&pond);
    let garbage = txn.collect_garbage().unwrap();
    assert_eq!((garbage.removed_files, garbage.waiting), (1, 0));
    txn.commit("collect").unwrap();
    assert!(!data_dir(&pond).contains(&old_file));
    assert_no_stray_files(&pond, &[&model.node]);
    model.check(&pond.snapshot().unwrap());
}

// `follow`'s pattern: a few small appends, then compaction in the same transaction, round after
// round, sometimes with a snapshot open. Frames stay few, generations stay few, nothing is lost.
#[test]
fn appends_and_compactions_in_one_transaction_keep_files_few() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut model = Model::create(&pond, "/follow.log");
    let limits = CompactLimits::default();
    let mut held: Option<(Snapshot, Model)> = None;
    for round in 0..40u64 {
        let mut txn = begin(&pond);
        for i in 0..12 {
            model.append(&mut txn, &bytes(2 * KIB + 77 * i, round * 100 + i as u64));
        }
        txn.compact(&model.node, &limits).unwrap();
        txn.commit("follow").unwrap();
        // Rounds 10..14 run with a reader open: compaction cannot reuse retired generations.
        if round == 10 {
            held = Some((pond.snapshot().unwrap(), model.clone()));
        }
        if round == 14 {
            let (snapshot, then) = held.take().unwrap();
            then.check(&snapshot);
        }
        let snapshot = pond.snapshot().unwrap();
        let storage = snapshot.storage(model.node.id).unwrap();
        // Merged frames end at least `min_frame` long; with a reader open compaction may pause
        // (a few rounds of appends wait).
        let total = model.content.len() as u64;
        let paused = if (10..=14).contains(&round) {
            12 * 5
        } else {
            0
        };
        assert!(
            storage.frames <= total / limits.min_frame + 4 + paused,
            "round {round}: {storage:?} for {total} bytes"
        );
        let files: BTreeSet<i64> = storage
            .generations
            .iter()
            .chain(&storage.retired_generations)
            .copied()
            .collect();
        assert!(files.len() <= 4, "round {round}: {storage:?}");
    }
    let snapshot = pond.snapshot().unwrap();
    model.check(&snapshot);
    model.check_ranges_and_outboard(&snapshot, 3);
    drop(snapshot);
    let mut txn = begin(&pond);
    txn.collect_garbage().unwrap();
    txn.commit("collect").unwrap();
    assert_no_stray_files(&pond, &[&model.node]);
}

// A compaction that is rolled back leaves neither frames nor files behind.
#[test]
fn rolled_back_compaction_leaves_no_trace() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut model = Model::create(&pond, "/f");
    tiny_versions(&pond, &mut model, 200, 3);
    let files = data_dir(&pond);
    let mut txn = begin(&pond);
    txn.compact(&model.node, &CompactLimits::default())
        .unwrap()
        .unwrap();
    assert_ne!(data_dir(&pond), files);
    drop(txn);
    assert_eq!(data_dir(&pond), files);
    assert!(!pond.dir().join("journal").exists());
    let snapshot = pond.snapshot().unwrap();
    assert_eq!(snapshot.storage(model.node.id).unwrap().frames, 200);
    model.check(&snapshot);
}

// compact_all over a directory: every file, within the budget per transaction.
#[test]
fn compact_all_stops_at_the_budget_and_continues_in_the_next_transaction() {
    let (_dir, pond) = new_pond(Compression::None);
    let mut models: Vec<Model> = ["/d/a", "/d/b", "/d/c"]
        .iter()
        .map(|name| {
            let mut txn = begin(&pond);
            txn.mkdir(&path("/d"), true).unwrap();
            txn.commit("mkdir").unwrap();
            Model::create(&pond, name)
        })
        .collect();
    for (i, model) in models.iter_mut().enumerate() {
        tiny_versions(&pond, model, 100, 10 * i as u64);
    }
    let limits = CompactLimits {
        max_bytes: 200 * KIB as u64,
        ..CompactLimits::default()
    };
    let mut passes = 0;
    loop {
        let mut txn = begin(&pond);
        let pass = txn.compact_all(&path("/d"), &limits).unwrap();
        txn.commit("compact").unwrap();
        passes += 1;
        if pass.is_empty() {
            break;
        }
        assert!(passes < 50, "compaction does not converge");
    }
    // 3 files x 300 KiB with 200 KiB per transaction: several transactions.
    assert!(passes >= 5, "{passes} passes");
    let snapshot = pond.snapshot().unwrap();
    for model in &models {
        let storage = snapshot.storage(model.node.id).unwrap();
        assert!(storage.frames <= 4, "{storage:?}");
        model.check(&snapshot);
    }
}

// Regression: a file with nothing left to do does not end the pass; one call with enough budget
// compacts every file (what `follow` does once per interval).
#[test]
fn compact_all_with_budget_to_spare_compacts_every_file_in_one_call() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let mut txn = begin(&pond);
    txn.mkdir(&path("/d"), false).unwrap();
    txn.commit("mkdir").unwrap();
    let mut models: Vec<Model> = ["/d/a", "/d/b", "/d/c"]
        .iter()
        .map(|name| Model::create(&pond, name))
        .collect();
    for (i, model) in models.iter_mut().enumerate() {
        tiny_versions(&pond, model, 60, 100 * i as u64);
    }
    let mut txn = begin(&pond);
    let compacted = txn
        .compact_all(&PondPath::root(), &CompactLimits::default())
        .unwrap();
    let paths: Vec<String> = compacted.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(paths, ["/d/a", "/d/b", "/d/c"]);
    for (_, report) in &compacted {
        assert_eq!((report.frames_before, report.frames_after), (60, 1));
    }
    assert!(
        txn.compact_all(&PondPath::root(), &CompactLimits::default())
            .unwrap()
            .is_empty()
    );
    txn.commit("compact").unwrap();
    let snapshot = pond.snapshot().unwrap();
    for model in &models {
        model.check(&snapshot);
    }
}

#[derive(Clone, Debug)]
struct Round {
    sizes: Vec<usize>,
    one_txn: bool,
    compactions: Vec<(u64, u64)>,
    compact_in_append_txn: bool,
    collect: bool,
}

fn round() -> impl Strategy<Value = Round> {
    (
        proptest::collection::vec(
            prop_oneof![
                8 => 1usize..6_000,
                1 => 15_000usize..70_000,
                1 => 200_000usize..1_100_000,
            ],
            0..16,
        ),
        any::<bool>(),
        proptest::collection::vec(
            (
                prop_oneof![0u64..100_000, 100_000u64..4_000_000],
                prop_oneof![1u64..20_000, 100_000u64..1_500_000],
            ),
            0..3,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(sizes, one_txn, compactions, compact_in_append_txn, collect)| Round {
                sizes,
                one_txn,
                compactions,
                compact_in_append_txn,
                collect,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Random appends (many tiny versions) and compactions with random limits: every version's
    /// bytes, records (root, segment hash, length, frontier) and the outboard stay as they were,
    /// any range reads back, and `verify` is clean after every round.
    #[test]
    fn compaction_changes_no_version_byte_hash_or_outboard(
        rounds in proptest::collection::vec(round(), 1..5),
        seed in any::<u64>(),
        compress in any::<bool>(),
    ) {
        let compression = if compress { Compression::Zstd(1) } else { Compression::None };
        let (_dir, pond) = new_pond(compression);
        let mut model = Model::create(&pond, "/f");
        let mut data_seed = seed;
        for round in &rounds {
            let mut txn = begin(&pond);
            for &size in &round.sizes {
                data_seed += 1;
                model.append(&mut txn, &bytes(size, data_seed));
                if !round.one_txn {
                    txn.commit("append").unwrap();
                    txn = begin(&pond);
                }
            }
            if !round.compact_in_append_txn {
                txn.commit("append").unwrap();
                txn = begin(&pond);
            }
            let outboard = model.outboard(&pond);
            for &(max_bytes, min_frame) in &round.compactions {
                let limits = CompactLimits { max_bytes, min_frame };
                if let Some(report) = txn.compact(&model.node, &limits).unwrap() {
                    prop_assert!(report.frames_after < report.frames_before);
                }
            }
            if round.collect {
                txn.collect_garbage().unwrap();
            }
            txn.commit("compact").unwrap();
            prop_assert_eq!(model.outboard(&pond).len(), outboard.len());
            prop_assert!(model.outboard(&pond) == outboard);
            model.check(&pond.snapshot().unwrap());
        }
        let snapshot = pond.snapshot().unwrap();
        model.check_ranges_and_outboard(&snapshot, seed);
    }
}

/// Turns a format 3 catalog into what format 2 wrote: no change index, no folded transactions,
/// rowid tables for versions and frames with the frame size index, no removed table.
fn downgrade_to_format_2(pond_dir: &std::path::Path) {
    let conn = rusqlite::Connection::open(pond_dir.join(pond_store::CATALOG_FILE)).unwrap();
    conn.execute_batch(
        "BEGIN;
         DROP TABLE removed;
         CREATE TABLE frames_2 (
             node INTEGER NOT NULL REFERENCES nodes(id),
             raw_offset INTEGER NOT NULL,
             raw_len INTEGER NOT NULL,
             file_offset INTEGER NOT NULL,
             file_len INTEGER NOT NULL,
             codec INTEGER NOT NULL,
             generation INTEGER NOT NULL,
             PRIMARY KEY (node, raw_offset)
         );
         INSERT INTO frames_2 SELECT * FROM frames;
         DROP TABLE frames;
         ALTER TABLE frames_2 RENAME TO frames;
         CREATE INDEX frames_by_size ON frames (node, raw_len);
         CREATE TABLE versions_2 (
             node INTEGER NOT NULL REFERENCES nodes(id),
             version INTEGER NOT NULL,
             txn INTEGER NOT NULL,
             segment_len INTEGER NOT NULL,
             segment_hash BLOB NOT NULL,
             total_len INTEGER NOT NULL,
             root BLOB NOT NULL,
             frontier BLOB NOT NULL,
             PRIMARY KEY (node, version)
         );
         INSERT INTO versions_2 SELECT * FROM versions;
         DROP TABLE versions;
         ALTER TABLE versions_2 RENAME TO versions;
         DROP INDEX nodes_by_change;
         ALTER TABLE nodes DROP COLUMN changed_txn;
         ALTER TABLE txns DROP COLUMN last_txn;
         ALTER TABLE txns DROP COLUMN folded;
         UPDATE settings SET value = '2' WHERE key = 'format_version';
         COMMIT;",
    )
    .unwrap();
}

/// Turns a format 3 catalog into what format 1 wrote: no frame generations, one data file row
/// per node, no retired table (and what format 2 lacked).
fn downgrade_to_format_1(pond_dir: &std::path::Path) {
    downgrade_to_format_2(pond_dir);
    let conn = rusqlite::Connection::open(pond_dir.join(pond_store::CATALOG_FILE)).unwrap();
    conn.execute_batch(
        "BEGIN;
         DROP INDEX frames_by_size;
         ALTER TABLE frames DROP COLUMN generation;
         CREATE TABLE data_files_1 (
             node INTEGER PRIMARY KEY REFERENCES nodes(id),
             generation INTEGER NOT NULL,
             data_len INTEGER NOT NULL
         );
         INSERT INTO data_files_1 SELECT node, generation, data_len FROM data_files;
         DROP TABLE data_files;
         ALTER TABLE data_files_1 RENAME TO data_files;
         DROP TABLE retired;
         UPDATE settings SET value = '1' WHERE key = 'format_version';
         COMMIT;",
    )
    .unwrap();
}

fn format_version(pond_dir: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(pond_dir.join(pond_store::CATALOG_FILE)).unwrap();
    conn.query_row(
        "SELECT value FROM settings WHERE key = 'format_version'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

// Ponds written by formats 1 and 2 open (upgraded in place), read, verify, append and compact;
// what changed before the upgrade counts as changed for the change index.
#[test]
fn format_1_and_2_ponds_are_upgraded_on_open() {
    for (downgrade, from) in [
        (downgrade_to_format_1 as fn(&std::path::Path), "1"),
        (downgrade_to_format_2, "2"),
    ] {
        let (_dir, pond) = new_pond(Compression::Zstd(1));
        let mut model = Model::create(&pond, "/old.log");
        tiny_versions(&pond, &mut model, 120, 4);
        let dir = pond.dir().to_path_buf();
        drop(pond);
        downgrade(&dir);
        assert_eq!(format_version(&dir), from);

        let pond = Pond::open(&dir).unwrap();
        assert_eq!(format_version(&dir), "3");
        let snapshot = pond.snapshot().unwrap();
        model.check(&snapshot);
        let changed: Vec<i64> = snapshot
            .files_changed_since(0)
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(changed, [model.node.id]);
        drop(snapshot);
        let mut txn = begin(&pond);
        model.append(&mut txn, b"written by format 3\n");
        txn.compact(&model.node, &CompactLimits::default())
            .unwrap()
            .unwrap();
        txn.commit("append and compact").unwrap();
        model.check(&pond.snapshot().unwrap());
        assert_verify_clean(&pond.snapshot().unwrap());
        // Opening again is a no-op.
        Pond::open(&dir).unwrap();
        assert_eq!(format_version(&dir), "3");
    }
}

// A pond from a newer build is refused, naming the version found and the one supported.
#[test]
fn unknown_format_version_is_refused_clearly() {
    let (_dir, pond) = new_pond(Compression::None);
    let dir = pond.dir().to_path_buf();
    let conn = rusqlite::Connection::open(dir.join(pond_store::CATALOG_FILE)).unwrap();
    conn.execute(
        "UPDATE settings SET value = '4' WHERE key = 'format_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = Pond::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedFormat { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("format version 4") && text.contains("reads version 3"),
        "{text}"
    );
}
