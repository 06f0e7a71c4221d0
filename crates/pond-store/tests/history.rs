//! History folding, file removal and the change index, on a simulated clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use pond_store::{
    Clock, CompactLimits, Compression, HistoryPolicy, Node, Pond, Snapshot, StoreError,
};
use proptest::prelude::*;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{assert_verify_clean, new_pond, path};

/// A clock the test moves: milliseconds since the epoch.
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn start(at_ms: u64) -> (TestClock, Clock) {
        let ms = Arc::new(AtomicU64::new(at_ms));
        let read = ms.clone();
        let clock =
            Clock::new(move || UNIX_EPOCH + Duration::from_millis(read.load(Ordering::SeqCst)));
        (TestClock(ms), clock)
    }

    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// 2025-01-01T00:00:00Z: bucket boundaries fall on round minutes.
const START_MS: u64 = 1_735_689_600_000;

fn line(n: u64) -> Vec<u8> {
    format!(
        "{{\"n\":{n},\"pad\":\"{}\"}}\n",
        "x".repeat((n % 50) as usize)
    )
    .into_bytes()
}

struct Sim {
    _dir: tempfile::TempDir,
    pond: Pond,
    clock: TestClock,
    /// Content of each file after each append: (file, version, total content).
    appended: Vec<Vec<u8>>,
}

impl Sim {
    fn new(policy: HistoryPolicy) -> Sim {
        let (clock, pond_clock) = TestClock::start(START_MS);
        let (dir, pond) = new_pond(Compression::Zstd(1));
        let pond = pond.with_clock(pond_clock);
        let mut txn = pond.begin(vec!["init".into()], Duration::ZERO).unwrap();
        txn.set_history_policy(&policy).unwrap();
        txn.create_file(&path("/f")).unwrap();
        txn.commit("setup").unwrap();
        Sim {
            _dir: dir,
            pond,
            clock,
            appended: Vec::new(),
        }
    }

    /// One step: append a line to /f in a transaction with `argv`, then `every` passes.
    fn step(&mut self, n: u64, argv: &str, every: Duration) {
        let mut txn = self
            .pond
            .begin(argv.split(' ').map(String::from).collect(), Duration::ZERO)
            .unwrap();
        let node = txn.resolve(&path("/f")).unwrap();
        txn.append(&node, &mut line(n).as_slice(), None).unwrap();
        txn.commit("append").unwrap();
        let mut all = self.appended.last().cloned().unwrap_or_default();
        all.extend(line(n));
        self.appended.push(all);
        self.clock.advance(every);
    }

    fn fold(&self) -> pond_store::FoldReport {
        let mut txn = self
            .pond
            .begin(vec!["fold".into()], Duration::ZERO)
            .unwrap();
        let report = txn.fold_history().unwrap();
        txn.commit("fold").unwrap();
        report
    }

    fn snapshot(&self) -> Snapshot {
        self.pond.snapshot().unwrap()
    }
}

fn file(snapshot: &Snapshot) -> Node {
    snapshot.resolve(&path("/f")).unwrap()
}

/// Every kept version reads back as the content after its append, hashes like `blake3`, and
/// `verify` is clean.
fn check_kept(sim: &Sim) -> Vec<pond_store::Version> {
    let snapshot = sim.snapshot();
    let node = file(&snapshot);
    let versions = snapshot.versions(node.id).unwrap();
    let mut previous = 0;
    for v in &versions {
        let expected = &sim.appended[v.version as usize - 1];
        let mut content = Vec::new();
        snapshot
            .read(&node, Some(v.version))
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(&content, expected, "version {}", v.version);
        assert_eq!(v.root, blake3::hash(expected));
        assert_eq!(v.total_len, expected.len() as u64);
        assert_eq!(v.segment_len, v.total_len - previous);
        previous = v.total_len;
    }
    assert_verify_clean(&snapshot);
    versions
}

/// Transaction records tile 1..=last with no gap or overlap; returns how many they stand for.
fn check_records_tile(snapshot: &Snapshot) -> u64 {
    let mut records = snapshot.transactions(None).unwrap();
    records.reverse();
    let mut next = 1;
    let mut count = 0;
    for r in &records {
        assert_eq!(r.txn, next, "{records:?}");
        assert!(r.last_txn >= r.txn);
        count += r.folded.as_ref().map_or(1, |f| f.count);
        assert_eq!(
            r.folded.as_ref().map_or(1, |f| f.count),
            r.last_txn - r.txn + 1
        );
        next = r.last_txn + 1;
    }
    assert_eq!(next - 1, snapshot.last_txn().unwrap());
    count
}

// Two hours of a step every 10 s under the default policy (5 min kept whole, then a point every
// 10 min): older versions fold into one per bucket, each kept one still reads back, hashes like
// b3sum and verifies; the last five minutes stay whole; transactions fold into bucket records.
#[test]
fn old_versions_fold_to_one_per_interval_and_keep_their_roots() {
    let mut sim = Sim::new(HistoryPolicy::default());
    for n in 0..720 {
        sim.step(n, "pond run /etc/hl follow", Duration::from_secs(10));
    }
    let report = sim.fold();
    assert!(report.versions_folded > 600, "{report:?}");
    let versions = check_kept(&sim);
    // 12 buckets of 10 minutes; the last 5 minutes (30 steps) are whole.
    let cutoff = sim.clock.now() - Duration::from_secs(300);
    let recent = sim
        .snapshot()
        .transactions(None)
        .unwrap()
        .iter()
        .filter(|r| r.folded.is_none() && r.time.as_str() > pond_time(cutoff).as_str())
        .count();
    assert!((29..=31).contains(&recent), "{recent} recent records");
    assert!(
        versions.len() <= 12 + 31 && versions.len() >= 12 + 29,
        "{} versions kept",
        versions.len()
    );
    assert_eq!(versions.last().unwrap().version, 720);
    let snapshot = sim.snapshot();
    // Setup, the appends and the fold itself.
    assert_eq!(check_records_tile(&snapshot), 1 + 720 + 1);
    let folded: Vec<_> = snapshot
        .transactions(None)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.folded)
        .collect();
    assert!(folded.len() >= 11);
    assert!(
        folded[0].commands.iter().any(|c| c.argv[0] == "pond"),
        "{:?}",
        folded[0]
    );

    // A folded version number says where it went.
    let node = file(&snapshot);
    let err = snapshot.version(&node, 3).unwrap_err();
    assert!(
        matches!(err, StoreError::FoldedVersion { version: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("was folded into version"), "{err}");
}

// Folding once a minute as `follow` does ends where one fold at the end does, and a fold with
// nothing new changes nothing.
#[test]
fn folding_step_by_step_equals_folding_at_once() {
    let policy = HistoryPolicy {
        recent: Duration::from_secs(60),
        interval: Duration::from_secs(300),
    };
    let mut at_once = Sim::new(policy);
    let mut stepwise = Sim::new(policy);
    for n in 0..400 {
        at_once.step(n, "pond run /etc/hl follow", Duration::from_secs(3));
        stepwise.step(n, "pond run /etc/hl follow", Duration::from_secs(3));
        if n % 20 == 19 {
            stepwise.fold();
        }
    }
    at_once.fold();
    stepwise.fold();
    let kept = |sim: &Sim| -> Vec<(u64, u64, u64)> {
        check_kept(sim)
            .iter()
            .map(|v| (v.version, v.total_len, v.segment_len))
            .collect()
    };
    assert_eq!(kept(&at_once), kept(&stepwise));
    let buckets = |sim: &Sim| -> Vec<(String, u64)> {
        let snapshot = sim.snapshot();
        check_records_tile(&snapshot);
        snapshot
            .transactions(None)
            .unwrap()
            .into_iter()
            .filter(|r| r.argv.first().map(String::as_str) == Some("pond") || r.folded.is_some())
            .map(|r| (r.time, r.folded.map_or(1, |f| f.commands[0].count)))
            .collect()
    };
    assert_eq!(buckets(&at_once), buckets(&stepwise));
    let last = stepwise.snapshot().last_txn().unwrap();
    let report = stepwise.fold();
    assert_eq!(report.txns_folded + report.versions_folded, 0);
    assert_eq!(
        stepwise.snapshot().last_txn().unwrap(),
        last,
        "nothing to commit"
    );
}

// With no recent window everything folds; the next transaction still gets the next number, and
// a rare command's summary survives in its bucket's record.
#[test]
fn everything_folded_keeps_numbering_and_rare_summaries() {
    let mut sim = Sim::new(HistoryPolicy {
        recent: Duration::ZERO,
        interval: Duration::from_secs(3600),
    });
    for n in 0..50 {
        sim.step(n, "pond run /etc/hl follow", Duration::from_secs(1));
    }
    let mut txn = sim
        .pond
        .begin(vec!["pond".into(), "mknod".into()], Duration::ZERO)
        .unwrap();
    txn.mkdir(&path("/etc"), true).unwrap();
    txn.commit("mknod logfile /etc/hl").unwrap();
    sim.clock.advance(Duration::from_secs(1));
    let before = sim.snapshot().last_txn().unwrap();
    sim.fold();
    let snapshot = sim.snapshot();
    let records = snapshot.transactions(None).unwrap();
    assert_eq!(records.len(), 2, "{records:?}"); // one folded record, then the fold itself
    let folded = records[1].folded.clone().unwrap();
    assert!(
        folded
            .notes
            .iter()
            .any(|n| n.summary == "mknod logfile /etc/hl"),
        "{folded:?}"
    );
    assert_eq!(snapshot.last_txn().unwrap(), before + 1);
    drop(snapshot);
    let mut txn = sim.pond.begin(vec!["next".into()], Duration::ZERO).unwrap();
    assert_eq!(txn.txn(), before + 2);
    txn.mkdir(&path("/more"), false).unwrap();
    txn.commit("next").unwrap();
    check_records_tile(&sim.snapshot());
    check_kept(&sim);
}

// The change index: files changed after a transaction, by content or by name; compaction
// looks only at those and moves its mark when done.
#[test]
fn change_index_finds_what_changed_and_compaction_follows_it() {
    let (_clock, pond_clock) = TestClock::start(START_MS);
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let pond = pond.with_clock(pond_clock);
    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    for name in ["a", "b", "c"] {
        let node = txn.create_file(&path(&format!("/{name}"))).unwrap();
        for n in 0..20 {
            txn.append(&node, &mut line(n).as_slice(), None).unwrap();
        }
    }
    let first = txn.commit("three files").unwrap().unwrap();
    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    let b = txn.resolve(&path("/b")).unwrap();
    txn.append(&b, &mut line(99).as_slice(), None).unwrap();
    txn.rename(&path("/c"), &path("/c2")).unwrap();
    txn.commit("append and rename").unwrap();
    let changed: Vec<String> = pond
        .snapshot()
        .unwrap()
        .files_changed_since(first)
        .unwrap()
        .iter()
        .map(|n| n.path.to_string())
        .collect();
    assert_eq!(changed, ["/b", "/c2"]);

    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    let pass = txn.compact_changed(&CompactLimits::default()).unwrap();
    assert!(pass.done);
    assert_eq!(pass.files.len(), 3);
    txn.commit("compact").unwrap();
    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    let pass = txn.compact_changed(&CompactLimits::default()).unwrap();
    assert!(pass.done && pass.files.is_empty());
    assert!(!txn.has_changes());
    drop(txn);
    assert_verify_clean(&pond.snapshot().unwrap());
}

// A removed file is gone from the namespace at once and its data files once no snapshot can
// read them; a snapshot opened before still reads it; the name can be used again.
#[test]
fn removed_files_go_after_the_last_snapshot_that_reads_them() {
    let (dir, pond) = new_pond(Compression::Zstd(1));
    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    txn.mkdir(&path("/d"), false).unwrap();
    let node = txn.create_file(&path("/d/old")).unwrap();
    let content: Vec<u8> = (0..5000).flat_map(line).collect();
    txn.append(&node, &mut content.as_slice(), None).unwrap();
    txn.commit("write").unwrap();
    let data_dir = dir.path().join("pond/data");
    let files_of = |id: i64| {
        std::fs::read_dir(&data_dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{id}."))
            })
            .count()
    };
    assert_eq!(files_of(node.id), 2);

    let reader = pond.snapshot().unwrap();
    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    let removed = txn.remove_file(&node).unwrap();
    assert_eq!(removed.bytes, content.len() as u64);
    assert_eq!(removed.blake3, blake3::hash(&content).to_hex().to_string());
    let d = txn.resolve(&path("/d")).unwrap();
    assert!(txn.remove_empty_dir(&d).unwrap());
    txn.commit("remove").unwrap();
    // The old snapshot still reads it; its files wait.
    assert_eq!(reader.read_bytes(node.id, 0, 10).unwrap(), content[..10]);
    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    let garbage = txn.collect_garbage().unwrap();
    assert_eq!(garbage.waiting, 1);
    txn.commit("gc").unwrap();
    assert_eq!(files_of(node.id), 2);
    drop(reader);
    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    let garbage = txn.collect_garbage().unwrap();
    assert_eq!(garbage.removed_files, 2);
    txn.commit("gc").unwrap();
    assert_eq!(files_of(node.id), 0);
    let snapshot = pond.snapshot().unwrap();
    assert!(snapshot.lookup(&path("/d")).unwrap().is_none());
    assert_verify_clean(&snapshot);
    drop(snapshot);
    let mut txn = pond.begin(vec![], Duration::ZERO).unwrap();
    txn.mkdir(&path("/d"), false).unwrap();
    txn.create_file(&path("/d/old")).unwrap();
    txn.commit("again").unwrap();
}

// Writers of one process queue for the lock: the second gets it when the first ends, and one
// that cannot get it in time fails naming the holder.
#[test]
fn writers_of_one_process_queue_for_the_lock() {
    let (_dir, pond) = new_pond(Compression::None);
    let mut first = pond.begin(vec![], Duration::ZERO).unwrap();
    first.mkdir(&path("/first"), false).unwrap();
    let other = pond.clone();
    let waiter = std::thread::spawn(move || {
        let mut txn = other.begin(vec![], Duration::from_secs(30)).unwrap();
        // The first writer's commit is visible to the second.
        assert!(txn.lookup(&path("/first")).unwrap().is_some());
        txn.mkdir(&path("/second"), false).unwrap();
        txn.commit("second").unwrap()
    });
    std::thread::sleep(Duration::from_millis(100));
    let first_txn = first.commit("first").unwrap().unwrap();
    let second_txn = waiter.join().unwrap().unwrap();
    assert_eq!(second_txn, first_txn + 1);
    let held = pond.begin(vec![], Duration::ZERO).unwrap();
    let err = pond.begin(vec![], Duration::from_millis(50)).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains(&std::process::id().to_string()),
        "{err}"
    );
    drop(held);
}

/// `at` as the store records transaction times.
fn pond_time(at: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(at).format(&format).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Any policy and any step timing, folded at random moments: kept versions read back and
    /// verify, transaction records tile the numbers, and every transaction is counted once.
    #[test]
    fn any_policy_and_timing_keeps_history_consistent(
        recent_s in 0u64..400,
        interval_s in 1u64..900,
        gaps in proptest::collection::vec(0u64..120_000, 1..80),
        folds in proptest::collection::vec(any::<bool>(), 80),
    ) {
        let mut sim = Sim::new(HistoryPolicy {
            recent: Duration::from_secs(recent_s),
            interval: Duration::from_secs(interval_s),
        });
        let mut folds_done = 0;
        for (i, gap) in gaps.iter().enumerate() {
            sim.step(i as u64, if i % 17 == 5 { "rare" } else { "pond run" },
                     Duration::from_millis(*gap));
            if folds[i] {
                sim.fold();
                folds_done += 1;
            }
        }
        sim.fold();
        folds_done += 1;
        let kept = check_kept(&sim);
        prop_assert_eq!(kept.last().unwrap().version, gaps.len() as u64);
        let snapshot = sim.snapshot();
        // Setup, the appends, and the folds that changed something.
        let counted = check_records_tile(&snapshot);
        prop_assert!(counted > gaps.len() as u64);
        prop_assert!(counted <= 1 + gaps.len() as u64 + folds_done);
    }
}
