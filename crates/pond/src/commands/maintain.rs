//! `pond maintain [PATH] [--max-bytes N] [--min-frame N]`: the pond's upkeep, in passes.
//!
//! Each pass is one transaction (see `pond_factory::maintain`): it removes data files retired
//! or removed by earlier commits (only if no snapshot is open anywhere), folds history older
//! than the policy's recent window (`pond settings`), runs every factory node's upkeep
//! (retention), and compacts within `--max-bytes`: the files changed since the last finished
//! compaction, or with PATH every file under it. Passes repeat (with a pause, so a waiting
//! writer such as `follow` gets the lock in between) until compaction is done; one more pass
//! removes what the last ones retired. Then the catalog gives its free pages back to the file
//! system and empties its write-ahead log. A pond with nothing to do commits nothing.

use super::{Env, pond_path};
use crate::output;
use pond_factory::maintain::{MaintainPass, MaintainScope};
use pond_store::{CompactLimits, CompactReport, FoldReport, GarbageReport};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct Compacted {
    path: String,
    #[serde(flatten)]
    report: CompactReport,
}

#[derive(Serialize)]
struct Report {
    txns: Vec<u64>,
    files: Vec<Compacted>,
    retired: GarbageReport,
    folded: FoldReport,
    /// What the factory nodes' upkeep did (retention).
    nodes: Vec<String>,
    catalog_bytes_before: u64,
    catalog_bytes_after: u64,
}

/// Pause between two passes, so that other writers get the lock.
const PAUSE_BETWEEN_PASSES: std::time::Duration = std::time::Duration::from_millis(100);
/// Passes of one `pond maintain`, at most.
const MAX_PASSES: usize = 64;

pub fn run(
    env: &Env<'_>,
    path: Option<&str>,
    limits: CompactLimits,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let under = path.map(pond_path).transpose()?.filter(|p| !p.is_root());
    let runner = super::factory::runner(env, "pond run".to_string());
    let catalog_bytes_before = env.pond.catalog_bytes();
    let mut files: BTreeMap<String, CompactReport> = BTreeMap::new();
    let mut retired = GarbageReport::default();
    let mut folded = FoldReport::default();
    let mut nodes = Vec::new();
    let mut txns = Vec::new();
    let mut passes = 0;
    let mut compaction_done = false;
    loop {
        passes += 1;
        if passes > 1 {
            // Let a waiting writer (a running `follow`) in between passes.
            std::thread::sleep(PAUSE_BETWEEN_PASSES);
        }
        let scope = match &under {
            Some(under) => MaintainScope::Under(under),
            None => MaintainScope::Changed,
        };
        let pass: MaintainPass = runner.maintain_pass(&limits, scope)?;
        retired.add(&pass.garbage);
        folded.txns_folded += pass.fold.txns_folded;
        folded.versions_folded += pass.fold.versions_folded;
        folded.files += pass.fold.files;
        folded.through_txn = folded.through_txn.max(pass.fold.through_txn);
        nodes.extend(pass.nodes);
        txns.extend(pass.txn);
        for (path, report) in pass.compacted {
            files
                .entry(path)
                .and_modify(|merged| merged.then(&report))
                .or_insert(report);
        }
        // Once compaction is done, one more pass removes what the last ones retired or
        // removed, unless a snapshot holds it (a later run does it then).
        if pass.done && (compaction_done || pass.garbage_left == 0 || pass.garbage.waiting > 0) {
            break;
        }
        compaction_done = pass.done;
        if passes >= MAX_PASSES {
            // A writer adding small frames as fast as they are merged would keep this going.
            tracing::warn!(
                "stopping after {MAX_PASSES} passes; run `pond maintain` again for the rest"
            );
            break;
        }
    }
    let mut txn = env.begin()?;
    let free_pages = txn.release_free_pages()?;
    if let Some(number) = txn.commit(&format!(
        "maintain: {free_pages} free catalog page(s) given back"
    ))? {
        txns.push(number);
    }
    env.pond.checkpoint()?;
    let report = Report {
        txns,
        files: files
            .into_iter()
            .map(|(path, report)| Compacted { path, report })
            .collect(),
        retired,
        folded,
        nodes,
        catalog_bytes_before,
        catalog_bytes_after: env.pond.catalog_bytes(),
    };
    if json {
        output::json(out, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    for file in &report.files {
        let r = &file.report;
        writeln!(
            out,
            "{}: {} -> {} frames, {} -> {} bytes stored ({} bytes rewritten)",
            file.path,
            r.frames_before,
            r.frames_after,
            r.stored_bytes_before,
            r.stored_bytes_after,
            r.raw_bytes
        )?;
    }
    for node in &report.nodes {
        writeln!(out, "{node}")?;
    }
    let r = &report.retired;
    if r.removed_files + r.cut_files + r.waiting > 0 {
        writeln!(
            out,
            "retired data files: {} removed, {} cut, {} bytes freed, {} waiting for open snapshots",
            r.removed_files, r.cut_files, r.freed_bytes, r.waiting
        )?;
    }
    let f = &report.folded;
    if f.txns_folded + f.versions_folded > 0 {
        writeln!(
            out,
            "history: {} transaction record(s) and {} version(s) folded",
            f.txns_folded, f.versions_folded
        )?;
    }
    let txn_text = match report.txns.as_slice() {
        [] => output::txn_text(None),
        numbers => format!(
            "txn {}",
            numbers
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    writeln!(
        out,
        "{} file(s) compacted; catalog {} -> {} bytes ({txn_text})",
        report.files.len(),
        report.catalog_bytes_before,
        report.catalog_bytes_after
    )?;
    Ok(ExitCode::SUCCESS)
}
