//! `logfile` scenarios of rotation: by rename and by copytruncate (new active file larger than
//! the tracked size, missed bytes, two rotations between syncs), logrotate's numbered scheme,
//! truncation without an archive, changed and missing archives, and an archive that reuses a
//! vanished one's name and inode. Driven through [`support::logs`], whose doc says what every
//! step checks.
//!
//! Needs `b3sum` on PATH (`make test` installs it under `.tools/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use support::logs::{BLOCK, Logs, NODE, bytes_of, concat, lines, s};

// ---------------------------------------------------------------------------------------------
// 4-5. Rotation

/// `mv app.log app-1.log`, then a new `app.log` that is already larger than the tracked size
/// (and shares its first block: a common header). Not an append: the old node is renamed.
fn rotation_by_rename_new_active_larger(tracked: usize, verify: &str) {
    let logs = Logs::flat(&format!("verify: {verify}\n"));
    let old = lines(tracked, 10);
    logs.write("app.log", &old);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.rename("app.log", "app-1.log");
    let new = concat(&[&old[..BLOCK], &lines(tracked + 3 * BLOCK + 11, 11)]);
    logs.write("app.log", &new);
    let report = logs.step(
        "rotated by rename",
        &[("app-1.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 0);
    assert_eq!(bytes_of(&report, "app.log"), new.len() as u64);
    assert_eq!(logs.id("app-1.log"), id, "the archive keeps the node");
    assert_ne!(logs.id("app.log"), id);
    assert_eq!(logs.segments("app-1.log"), [tracked as u64]);
    assert_eq!(logs.segments("app.log"), [new.len() as u64]);
    logs.idle("rerun");
}

#[test]
fn rotation_by_rename_new_active_larger_odd_size() {
    rotation_by_rename_new_active_larger(3 * BLOCK + 4_321, "sample");
}

#[test]
fn rotation_by_rename_new_active_larger_block_multiple() {
    rotation_by_rename_new_active_larger(4 * BLOCK, "sample");
}

/// copytruncate, then the writer writes more than the tracked size before the next sync. The
/// new content equals the old in every block but the one holding the old end (`differ_last`),
/// or in every block but one in the middle (only `verify: full` must see that one).
fn copytruncate_new_active_larger(tracked: usize, verify: &str, differ_block: Option<usize>) {
    let logs = Logs::flat(&format!("verify: {verify}\n"));
    let old = lines(tracked, 20);
    logs.write("app.log", &old);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.copytruncate("app.log", "app-1.log");
    // Same inode, now larger than `tracked`, equal to the old bytes except in one block.
    let last = tracked.div_ceil(BLOCK) - 1;
    let block = differ_block.unwrap_or(last);
    let mut new = old.clone();
    let at = block * BLOCK + (tracked - block * BLOCK).min(BLOCK) / 2;
    new[at] ^= 0x20;
    new.extend_from_slice(&lines(2 * BLOCK + 999, 21));
    logs.append("app.log", &new);
    let report = logs.step(
        &format!("copytruncate, tracked {tracked}, block {block} differs"),
        &[("app-1.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 0);
    assert_eq!(logs.id("app-1.log"), id, "the archive keeps the node");
    assert_eq!(logs.segments("app-1.log"), [tracked as u64]);
    assert_eq!(logs.segments("app.log"), [new.len() as u64]);
    logs.idle("rerun");
}

#[test]
fn copytruncate_new_active_larger_odd_size() {
    copytruncate_new_active_larger(5 * BLOCK + 1_001, "sample", None);
}

#[test]
fn copytruncate_new_active_larger_block_multiple() {
    copytruncate_new_active_larger(5 * BLOCK, "sample", None);
}

#[test]
fn copytruncate_new_active_larger_block_multiple_single_block() {
    copytruncate_new_active_larger(BLOCK, "sample", None);
}

#[test]
fn copytruncate_new_active_differs_in_a_middle_block_verify_full() {
    copytruncate_new_active_larger(12 * BLOCK, "full", Some(6));
    copytruncate_new_active_larger(12 * BLOCK + 7, "full", Some(5));
}

#[test]
fn rotation_with_missed_bytes() {
    let logs = Logs::flat("");
    let old = lines(70_001, 30);
    logs.write("app.log", &old[..50_000]);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    // Appended after the last sync, then rotated before the next.
    logs.append("app.log", &old[50_000..]);
    logs.rename("app.log", "app-1.log");
    logs.write("app.log", &lines(90_000, 31));
    let report = logs.step(
        "missed bytes, then rotation",
        &[("app-1.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 20_001);
    assert_eq!(logs.id("app-1.log"), id);
    assert_eq!(logs.segments("app-1.log"), [50_000, 20_001]);
    logs.idle("rerun");

    // The same by copytruncate: the archive is found by content.
    logs.append("app.log", b"{\"missed\":true}\n");
    let before = logs.read("app.log");
    let id = logs.id("app.log");
    logs.copytruncate("app.log", "app-2.log");
    logs.append("app.log", b"{\"fresh\":1}\n");
    let report = logs.step(
        "missed bytes, then copytruncate",
        &[("app-2.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app-2.log"), 16);
    assert_eq!(logs.id("app-2.log"), id);
    assert_eq!(logs.segments("app-2.log"), [90_000, 16]);
    assert_eq!(logs.read("app-2.log"), before);
    logs.idle("rerun");
}

#[test]
fn two_rotations_between_syncs_by_rename() {
    let logs = Logs::flat("");
    logs.write("app.log", &lines(30_000, 40));
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.append("app.log", &lines(1_000, 41));
    logs.rename("app.log", "app-1.log");
    logs.write("app.log", &lines(45_000, 42));
    logs.rename("app.log", "app-2.log");
    logs.write("app.log", &lines(20_000, 43));
    let report = logs.step(
        "two rotations",
        &[
            ("app-1.log", "rotated"),
            ("app-2.log", "new"),
            ("app.log", "new"),
        ],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 1_000);
    assert_eq!(logs.id("app-1.log"), id);
    assert_eq!(logs.segments("app-1.log"), [30_000, 1_000]);
    logs.idle("rerun");
}

#[test]
fn two_rotations_between_syncs_by_copytruncate() {
    let logs = Logs::flat("");
    // Every generation starts with the same header block: only full content tells them apart.
    let header = lines(BLOCK + 100, 50);
    let first = concat(&[&header, &lines(30_000, 51)]);
    logs.write("app.log", &first);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.append("app.log", b"{\"missed\":1}\n");
    logs.copytruncate("app.log", "app-1.log");
    logs.append("app.log", &concat(&[&header, &lines(60_000, 52)]));
    logs.copytruncate("app.log", "app-2.log");
    logs.append("app.log", &concat(&[&header, &lines(50_000, 53)]));
    let report = logs.step(
        "two copytruncates",
        &[
            ("app-1.log", "rotated"),
            ("app-2.log", "new"),
            ("app.log", "new"),
        ],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 13);
    assert_eq!(logs.id("app-1.log"), id);
    assert_eq!(logs.segments("app-1.log"), [first.len() as u64, 13]);
    logs.idle("rerun");
}

#[test]
fn copytruncate_to_empty_then_growth() {
    let logs = Logs::flat("");
    logs.write("app.log", &lines(33_333, 60));
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.copytruncate("app.log", "app-1.log");
    let report = logs.step(
        "copytruncate, active empty",
        &[("app-1.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app.log"), 0);
    assert_eq!(logs.id("app-1.log"), id);
    assert_eq!(logs.segments("app-1.log"), [33_333]);
    logs.idle("rerun");

    logs.append("app.log", &lines(12_345, 61));
    logs.step("active grows", &[("app.log", "appended")]);
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// 6. Numbered schemes

/// logrotate's default numbered scheme with `rotate 3` and `compress`: app.log.3 becomes
/// app.log.4.gz (outside the pattern), .2 -> .3, .1 -> .2, app.log -> .1, a new app.log.
fn rotate_numbered(logs: &Logs) {
    if logs.host("app.log.3").exists() {
        let bytes = logs.read("app.log.3");
        logs.write("app.log.4.gz", &concat(&[b"GZ", &bytes]));
        logs.remove("app.log.3");
    }
    for i in (1..=2).rev() {
        if logs.host(&format!("app.log.{i}")).exists() {
            logs.rename(&format!("app.log.{i}"), &format!("app.log.{}", i + 1));
        }
    }
    logs.rename("app.log", "app.log.1");
    logs.write("app.log", b"");
}

/// Fresh log bytes from the next seed, counted in `written`.
fn fresh(seed: &mut u64, written: &mut usize, len: usize) -> Vec<u8> {
    *seed += 1;
    *written += len;
    lines(len, *seed)
}

#[test]
fn numbered_logrotate_over_five_rotations() {
    let mut logs = Logs::new("", "app.log", Some("app.log.[0-9]"), "");
    let (mut seed, mut written) = (70u64, 0usize);
    logs.write("app.log", &fresh(&mut seed, &mut written, 20_000));
    logs.step("first", &[("app.log", "new")]);
    let mut generations = 1;
    let names = ["app.log", "app.log.1", "app.log.2", "app.log.3"];

    for k in 1..=5usize {
        let ctx = format!("rotation {k}");
        let grow = fresh(&mut seed, &mut written, 5_000 + k * 1_000);
        logs.append("app.log", &grow);
        logs.step(&format!("{ctx}: growth"), &[("app.log", "appended")]);
        // Written after that sync, before the rotation: must reach the archive's node.
        let missed = fresh(&mut seed, &mut written, 100 * k + 1);
        logs.append("app.log", &missed);

        let before: BTreeMap<&str, (i64, usize)> = names
            .iter()
            .filter(|n| logs.host(n).exists())
            .map(|n| (*n, (logs.id(n), logs.versions(n).len())))
            .collect();
        let dropped = logs.read_opt("app.log.3");
        rotate_numbered(&logs);
        logs.append("app.log", &fresh(&mut seed, &mut written, 3_000 + k));
        generations += 1;

        let missing = format!("app.log.3@{}", logs.last_txn() + 1);
        let mut expect = vec![("app.log", "new"), ("app.log.1", "rotated")];
        if k >= 2 {
            expect.push(("app.log.2", "renamed"));
        }
        if k >= 3 {
            expect.push(("app.log.3", "renamed"));
        }
        if let Some(bytes) = dropped {
            // Gone from the host (compressed to app.log.4.gz); its name is taken by .2.
            expect.push((missing.as_str(), "missing"));
            logs.kept.insert(missing.clone(), bytes);
        }
        let report = logs.step(&ctx, &expect);
        assert_eq!(bytes_of(&report, "app.log.1"), missed.len() as u64, "{ctx}");
        for (i, name) in names.iter().enumerate().take(3) {
            let Some(&(id, versions)) = before.get(name) else {
                continue;
            };
            let to = names[i + 1];
            assert_eq!(logs.id(to), id, "{ctx}: {name} -> {to} keeps its node");
            let grew = usize::from(i == 0);
            assert_eq!(logs.versions(to).len(), versions + grew, "{ctx}: {to}");
        }
        if let Some(&(id, versions)) = before.get("app.log.3") {
            assert_eq!(
                logs.id(&missing),
                id,
                "{ctx}: dropped archive keeps its node"
            );
            assert_eq!(logs.versions(&missing).len(), versions, "{ctx}");
        }
        logs.idle(&format!("{ctx}: rerun"));
        // Never stored twice: one node per generation, every byte once.
        let mirrored = logs.mirrored();
        assert_eq!(mirrored.len(), generations, "{ctx}: {mirrored:?}");
        let stored: u64 = mirrored.values().map(|e| e["size"].as_u64().unwrap()).sum();
        assert_eq!(stored, written as u64, "{ctx}: bytes stored");
    }

    // Two rotations between syncs: the synced active file is now app.log.2.
    let ctx = "two rotations between syncs";
    let active_id = logs.id("app.log");
    let first_id = logs.id("app.log.1");
    let missed = fresh(&mut seed, &mut written, 777);
    logs.append("app.log", &missed);
    let gone = [logs.read("app.log.3"), logs.read("app.log.2")];
    rotate_numbered(&logs);
    logs.append("app.log", &fresh(&mut seed, &mut written, 4_000));
    rotate_numbered(&logs);
    logs.append("app.log", &fresh(&mut seed, &mut written, 2_000));
    generations += 2;
    let txn = logs.last_txn() + 1;
    let (gone3, gone2) = (format!("app.log.3@{txn}"), format!("app.log.2@{txn}"));
    logs.kept.insert(gone3.clone(), gone[0].clone());
    logs.kept.insert(gone2.clone(), gone[1].clone());
    let report = logs.step(
        ctx,
        &[
            ("app.log", "new"),
            ("app.log.1", "new"),
            ("app.log.2", "rotated"),
            ("app.log.3", "renamed"),
            (gone3.as_str(), "missing"),
            (gone2.as_str(), "missing"),
        ],
    );
    assert_eq!(bytes_of(&report, "app.log.2"), 777);
    assert_eq!(logs.id("app.log.2"), active_id, "{ctx}");
    assert_eq!(logs.id("app.log.3"), first_id, "{ctx}");
    logs.idle("rerun after two rotations");
    let mirrored = logs.mirrored();
    assert_eq!(mirrored.len(), generations, "{mirrored:?}");
    let stored: u64 = mirrored.values().map(|e| e["size"].as_u64().unwrap()).sum();
    assert_eq!(stored, written as u64, "bytes stored");
}

// ---------------------------------------------------------------------------------------------
// 7. Truncation without an archive

#[test]
fn truncated_in_place_without_archive_keeps_old_node() {
    let mut logs = Logs::flat("");
    let old = lines(50_000, 80);
    logs.write("app.log", &old);
    logs.write("app-0.log", &lines(60_000, 79)); // an unrelated archive
    logs.step("first", &[("app.log", "new"), ("app-0.log", "new")]);
    let id = logs.id("app.log");

    logs.rewrite_in_place("app.log", &lines(20_000, 81));
    let kept = format!("app.log@{}", logs.last_txn() + 1);
    logs.kept.insert(kept.clone(), old.clone());
    let report = logs.step(
        "truncated and rewritten",
        &[(kept.as_str(), "truncated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app.log"), 20_000);
    let stderr = logs.stderr.borrow().clone();
    assert!(
        stderr.contains(s(&logs.host("app.log"))) && stderr.contains(&kept),
        "a truncation warns, naming the file and where the old bytes are: {stderr}"
    );
    assert_eq!(logs.id(&kept), id, "the old bytes keep their node");
    assert_ne!(logs.id("app.log"), id);
    assert_eq!(logs.segments(&kept), [50_000]);

    // Future runs go on as usual.
    logs.append("app.log", &lines(3_000, 82));
    logs.step("growth after truncation", &[("app.log", "appended")]);
    logs.idle("rerun after truncation");
}

#[test]
fn replaced_by_larger_file_without_archive_keeps_old_node() {
    let mut logs = Logs::flat("");
    let old = lines(3 * BLOCK, 90);
    logs.write("app.log", &old);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    // Deleted and written anew, larger than the tracked size (the freed inode may be reused).
    logs.remove("app.log");
    let new = lines(5 * BLOCK + 3, 91);
    logs.write("app.log", &new);
    let kept = format!("app.log@{}", logs.last_txn() + 1);
    logs.kept.insert(kept.clone(), old.clone());
    logs.step(
        "replaced by a larger file",
        &[(kept.as_str(), "truncated"), ("app.log", "new")],
    );
    assert_eq!(logs.id(&kept), id);
    assert_eq!(logs.segments("app.log"), [new.len() as u64]);
    logs.idle("rerun after replacement");
}

#[test]
fn truncation_with_on_truncate_fail_changes_nothing() {
    let mut logs = Logs::flat("on_truncate: fail\n");
    let old = lines(40_000, 100);
    logs.write("app.log", &old);
    logs.step("first", &[("app.log", "new")]);

    logs.rewrite_in_place("app.log", &lines(10_000, 101));
    logs.write("app-9.log", &lines(5_000, 102)); // would be new, but the run fails as a whole
    let before = logs.snapshot();
    for extra in [&["--dry-run"][..], &[]] {
        let out = logs.sync_output(extra);
        assert!(!out.status.success(), "sync {extra:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        support::assert_one_line_error(&stderr, &[s(&logs.host("app.log")), "on_truncate"]);
        assert_eq!(logs.snapshot(), before, "sync {extra:?} changed the pond");
    }
    assert_eq!(logs.cat(&Logs::pond("app.log")), old);
    assert!(logs.output(&["verify"]).status.success());

    // Switched to the default policy, the next run keeps the old bytes and goes on.
    let text = std::fs::read_to_string(&logs.config)
        .unwrap()
        .replace("on_truncate: fail", "on_truncate: keep");
    logs.reinstall("logfile", NODE, &text);
    let kept = format!("app.log@{}", logs.last_txn() + 1);
    logs.kept.insert(kept.clone(), old);
    logs.step(
        "after switching to keep",
        &[
            (kept.as_str(), "truncated"),
            ("app.log", "new"),
            ("app-9.log", "new"),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Changed and missing archives

#[test]
fn changed_and_missing_archives_keep_the_original() {
    let mut logs = Logs::flat("");
    logs.write("app.log", &lines(10_000, 110));
    let originals: Vec<Vec<u8>> = (1..=3).map(|i| lines(20_000 * i, 110 + i as u64)).collect();
    for (i, bytes) in originals.iter().enumerate() {
        logs.write(&format!("app-{}.log", i + 1), bytes);
    }
    logs.step(
        "first",
        &[
            ("app.log", "new"),
            ("app-1.log", "new"),
            ("app-2.log", "new"),
            ("app-3.log", "new"),
        ],
    );
    let ids: Vec<i64> = (1..=3).map(|i| logs.id(&format!("app-{i}.log"))).collect();

    // Rewritten in place, same size: reported, not re-ingested, the run succeeds.
    let mut changed = originals[0].clone();
    changed[12_345] ^= 0x01;
    logs.rewrite_in_place("app-1.log", &changed);
    logs.bump_mtime("app-1.log");
    logs.diverged
        .insert(logs.host("app-1.log"), originals[0].clone());
    logs.step("archive rewritten", &[("app-1.log", "changed_archive")]);
    let stderr = logs.stderr.borrow().clone();
    assert!(
        stderr.contains(s(&logs.host("app-1.log"))),
        "a changed archive warns naming it: {stderr}"
    );

    // Shrunk: the same. (app-1.log is still changed and still reported.)
    OpenOptions::new()
        .write(true)
        .open(logs.host("app-2.log"))
        .unwrap()
        .set_len(7_000)
        .unwrap();
    logs.diverged
        .insert(logs.host("app-2.log"), originals[1].clone());
    logs.step(
        "archive shrunk",
        &[
            ("app-1.log", "changed_archive"),
            ("app-2.log", "changed_archive"),
        ],
    );

    // Deleted from the host: the pond keeps its copy.
    logs.remove("app-3.log");
    logs.kept.insert("app-3.log".into(), originals[2].clone());
    logs.remove("app-2.log");
    logs.diverged.remove(&logs.host("app-2.log"));
    logs.kept.insert("app-2.log".into(), originals[1].clone());
    logs.step(
        "archives deleted",
        &[
            ("app-1.log", "changed_archive"),
            ("app-2.log", "missing"),
            ("app-3.log", "missing"),
        ],
    );
    for (i, id) in ids.iter().enumerate() {
        let name = format!("app-{}.log", i + 1);
        assert_eq!(logs.id(&name), *id, "{name}");
        assert_eq!(logs.versions(&name).len(), 1, "{name} was re-ingested");
    }

    // Restored to its original bytes: mirrored again, nothing stored.
    logs.rewrite_in_place("app-1.log", &originals[0]);
    logs.bump_mtime("app-1.log");
    logs.diverged.clear();
    let report = logs.step("archive restored", &[]);
    assert_eq!(report["bytes_written"], 0);
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// Inode reuse

/// Creates empty files `spare-N` in `dir` until one gets inode `ino` (ext4 hands a freed inode
/// out again soon); the others are removed. `None` when the filesystem does not reuse it.
fn file_with_inode(dir: &Path, ino: u64) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut spares = Vec::new();
    let mut found = None;
    for i in 0..256 {
        let path = dir.join(format!("spare-{i}"));
        std::fs::write(&path, b"").unwrap();
        if std::fs::metadata(&path).unwrap().ino() == ino {
            found = Some(path);
            break;
        }
        spares.push(path);
    }
    for path in spares {
        std::fs::remove_file(path).unwrap();
    }
    found
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// An archive disappears (reported `missing` once); meanwhile a new archive is being written under
/// a temporary name and gets the freed inode (ext4 hands freed inodes out again); then it is
/// renamed into the old name. The pond knows the old file is gone, so the same (path, inode) must
/// not make the new archive look like the old one, changed: it is a new file.
#[test]
fn new_archive_reusing_a_vanished_archives_name_and_inode_is_stored() {
    let mut logs = Logs::new("", "app.log", Some("app.log.[0-9]"), "");
    let old = lines(30_000, 160);
    logs.write("app.log", &lines(10_000, 161));
    logs.write("app.log.1", &old);
    logs.step("first", &[("app.log", "new"), ("app.log.1", "new")]);

    let ino = inode(&logs.host("app.log.1"));
    logs.remove("app.log.1");
    let Some(incoming) = file_with_inode(&logs.base, ino) else {
        support::skipped(
            "new_archive_reusing_a_vanished_archives_name_and_inode_is_stored",
            &format!("this file system did not hand inode {ino} out again"),
        );
        return;
    };
    std::fs::write(&incoming, lines(45_000, 162)).unwrap();
    logs.kept.insert("app.log.1".into(), old.clone());
    logs.step("archive deleted", &[("app.log.1", "missing")]);
    logs.idle("rerun");

    std::fs::rename(&incoming, logs.host("app.log.1")).unwrap();
    assert_eq!(inode(&logs.host("app.log.1")), ino);
    // The vanished archive's node steps aside (`NAME@TXN`) for the new file of that name.
    let aside = format!("app.log.1@{}", logs.last_txn() + 1);
    logs.kept.remove("app.log.1");
    logs.kept.insert(aside.clone(), old);
    logs.step(
        "a new archive with the old name and inode",
        &[("app.log.1", "new")],
    );
    logs.idle("rerun");
}
