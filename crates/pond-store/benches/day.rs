//! A simulated day of `follow` on a Hyperliquid node, for the catalog's size: the transactions
//! `follow` and its mongo stage commit, step by step, on a simulated clock.
//!
//! Each step (every 100 ms of simulated time, `follow`'s default `min_interval`) commits what a
//! real step does: the mirror appends RATE/10 lines to the current hour file (a new file each
//! hour, a new directory each day) and updates the file's logfile state; then the stage records
//! the file's cursor and the node's mark. Every 60 simulated seconds the periodic maintenance
//! runs its passes (removal of retired data, history folding, compaction of what changed, 16 MiB
//! of work per pass) as `follow` does. At the end, `pond maintain`'s passes, the release of free
//! catalog pages and a checkpoint.
//!
//! The content is synthetic and compresses far better than real trades (so the day fits in
//! memory and takes minutes); the catalog does not depend on it, except through the width of
//! stored byte offsets. Prints progress on stderr and one JSON document on stdout.
//!
//! `DAY_RATE` (lines/s, default 3000), `DAY_HOURS` (default 24), `DAY_LINE_BYTES` (default 470),
//! `DAY_DIR` (scratch directory; default a temp dir in /dev/shm when it exists).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use pond_store::{Clock, CompactLimits, Compression, Node, Pond, PondPath};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// 2025-01-01T00:00:00Z, in ms.
const START_MS: u64 = 1_735_689_600_000;
const STEP_MS: u64 = 100;
const MAINTAIN_EVERY_MS: u64 = 60_000;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn path(text: &str) -> PondPath {
    PondPath::parse(text).unwrap()
}

/// Catalog bytes by table and index (SQLite's dbstat).
fn breakdown(pond: &Pond) -> BTreeMap<String, u64> {
    let conn = rusqlite::Connection::open(pond.dir().join(pond_store::CATALOG_FILE)).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn count(pond: &Pond, sql: &str) -> u64 {
    let conn = rusqlite::Connection::open(pond.dir().join(pond_store::CATALOG_FILE)).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The maintenance passes `follow` runs (16 MiB of compaction work each).
fn maintain(pond: &Pond, argv: &[String]) -> (u64, u64) {
    let limits = CompactLimits {
        max_bytes: 16 << 20,
        ..CompactLimits::default()
    };
    let (mut passes, mut folded) = (0, 0);
    loop {
        passes += 1;
        let mut txn = pond.begin(argv.to_vec(), Duration::from_secs(10)).unwrap();
        txn.collect_garbage().unwrap();
        let fold = txn.fold_history().unwrap();
        folded += fold.txns_folded + fold.versions_folded;
        let pass = txn.compact_changed(&limits).unwrap();
        txn.commit("maintain").unwrap();
        if pass.done || passes > 200 {
            return (passes, folded);
        }
    }
}

fn main() {
    let rate: u64 = env("DAY_RATE", 3000);
    let hours: f64 = env("DAY_HOURS", 24.0);
    let line_bytes: usize = env("DAY_LINE_BYTES", 470);
    let scratch = match std::env::var("DAY_DIR") {
        Ok(dir) => {
            std::fs::create_dir_all(&dir).unwrap();
            tempfile::tempdir_in(dir).unwrap()
        }
        Err(_) if std::path::Path::new("/dev/shm").is_dir() => {
            tempfile::tempdir_in("/dev/shm").unwrap()
        }
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let now_ms = Arc::new(AtomicU64::new(START_MS));
    let read = now_ms.clone();
    let pond = Pond::init(
        &scratch.path().join("pond"),
        Compression::Zstd(1),
        pond_store::Sharing::Private,
    )
    .unwrap()
    .with_clock(Clock::new(move || {
        UNIX_EPOCH + Duration::from_millis(read.load(Ordering::SeqCst))
    }));
    let follow_argv: Vec<String> = ["pond", "run", "/etc/hl", "follow"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut txn = pond.begin(vec!["setup".into()], Duration::ZERO).unwrap();
    txn.mkdir(&path("/etc"), true).unwrap();
    let logfile = txn
        .mknod(&path("/etc/hl"), "logfile", "name: hl", false)
        .unwrap();
    let mongo = txn
        .mknod(&path("/etc/mongo"), "mongo", "source: logs/**", false)
        .unwrap();
    txn.mkdir(&path("/logs/hl/node_trades"), true).unwrap();
    txn.commit("setup").unwrap();

    let lines_per_step = (rate * STEP_MS / 1000) as usize;
    let line = |n: u64| -> Vec<u8> {
        let mut text = format!(
            "{{\"n\":{n},\"coin\":\"BTC\",\"px\":\"{}\"",
            60_000 + n % 997
        );
        while text.len() + 2 < line_bytes {
            text.push('x');
        }
        text.push_str("}\n");
        text.into_bytes()
    };
    let steps = (hours * 3600.0 * 1000.0 / STEP_MS as f64) as u64;
    let started = Instant::now();
    let mut file: Option<Node> = None;
    let mut current_hour = u64::MAX;
    let mut written = 0u64;
    let mut n = 0u64;
    let mut next_maintain = START_MS + MAINTAIN_EVERY_MS;
    let mut peak = 0u64;
    let mut hourly = Vec::new();
    let mut maintenance_passes = 0u64;
    let mut buf = Vec::with_capacity(lines_per_step * line_bytes);
    for step in 0..steps {
        let at = START_MS + step * STEP_MS;
        now_ms.store(at, Ordering::SeqCst);
        let hour = (at - START_MS) / 3_600_000;
        let mut txn = pond.begin(follow_argv.clone(), Duration::ZERO).unwrap();
        if hour != current_hour {
            current_hour = hour;
            let day = path(&format!("/logs/hl/node_trades/2025{:04}", 101 + hour / 24));
            txn.mkdir(&day, true).unwrap();
            file = Some(
                txn.create_file(&day.join(&(hour % 24).to_string()).unwrap())
                    .unwrap(),
            );
        }
        let node = file.clone().unwrap();
        buf.clear();
        for _ in 0..lines_per_step {
            buf.extend(line(n));
            n += 1;
        }
        let version = txn.append(&node, &mut buf.as_slice(), None).unwrap();
        written += buf.len() as u64;
        let state = format!(
            "{{\"format\":1,\"host_path\":\"/home/hl/data/node_trades/hourly/x/{hour}\",\"role\":\"active\",\"dev\":2049,\"ino\":{},\"size\":{},\"mtime_ns\":{},\"present\":true,\"last_action\":\"appended\",\"last_txn\":{}}}",
            1_000_000 + hour,
            version.total_len,
            at * 1_000_000,
            txn.txn()
        );
        txn.set_state(
            node.id,
            &format!("logfile:{}", logfile.id),
            state.as_bytes(),
        )
        .unwrap();
        let mirror_txn = txn
            .commit("logfile follow hl: 1 appended")
            .unwrap()
            .unwrap();
        // The stage's run: the file's cursor and the node's mark.
        let mut txn = pond.begin(follow_argv.clone(), Duration::ZERO).unwrap();
        let cursor = format!(
            "{{\"format\":1,\"offset\":{},\"last_error\":null}}",
            version.total_len
        );
        txn.set_state(node.id, &format!("mongo:{}", mongo.id), cursor.as_bytes())
            .unwrap();
        let mark =
            format!("{{\"format\":1,\"through_txn\":{mirror_txn},\"config_txn\":1,\"open\":[]}}");
        txn.set_state(
            mongo.id,
            &format!("mongo:{}:mark", mongo.id),
            mark.as_bytes(),
        )
        .unwrap();
        txn.commit("mongo hl.trades: 300 inserted, 0 duplicates, 0 dead-lettered")
            .unwrap();
        if at >= next_maintain {
            next_maintain += MAINTAIN_EVERY_MS;
            maintenance_passes += maintain(&pond, &follow_argv).0;
            let bytes = pond.catalog_bytes();
            peak = peak.max(bytes);
        }
        if (step + 1) % (3_600_000 / STEP_MS) == 0 {
            let bytes = pond.catalog_bytes();
            hourly.push(bytes);
            eprintln!(
                "simulated hour {:>2}: catalog {:>9} bytes, {} GB raw, {:.0} s elapsed",
                hourly.len(),
                bytes,
                written / 1_000_000_000,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let commits = count(&pond, "SELECT coalesce(max(last_txn), 0) FROM txns");
    let before_final = pond.catalog_bytes();
    // `pond maintain`: passes until done, free pages back, checkpoint.
    let (final_passes, _) = maintain(&pond, &["pond".into(), "maintain".into()]);
    maintain(&pond, &["pond".into(), "maintain".into()]);
    let mut txn = pond
        .begin(vec!["pond".into(), "maintain".into()], Duration::ZERO)
        .unwrap();
    let free_pages = txn.release_free_pages().unwrap();
    txn.commit("maintain: free pages").unwrap();
    pond.checkpoint().unwrap();
    let after = pond.catalog_bytes();
    let tables = breakdown(&pond);
    let report = serde_json::json!({
        "rate": rate,
        "hours": hours,
        "line_bytes": line_bytes,
        "steps": steps,
        "transactions": commits,
        "raw_bytes": written,
        "history": pond.snapshot().unwrap().history_policy().unwrap(),
        "catalog_bytes_peak_under_follow": peak,
        "catalog_bytes_by_hour": hourly,
        "catalog_bytes_before_maintain": before_final,
        "catalog_bytes_after_maintain": after,
        "free_pages_released": free_pages,
        "maintenance_passes_under_follow": maintenance_passes,
        "final_maintenance_passes": final_passes,
        "rows": {
            "txns": count(&pond, "SELECT count(*) FROM txns"),
            "versions": count(&pond, "SELECT count(*) FROM versions"),
            "frames": count(&pond, "SELECT count(*) FROM frames"),
            "nodes": count(&pond, "SELECT count(*) FROM nodes"),
            "node_state": count(&pond, "SELECT count(*) FROM node_state"),
        },
        "bytes_by_table": tables,
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    println!("{report}");
}
