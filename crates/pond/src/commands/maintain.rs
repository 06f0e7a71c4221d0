//! `pond maintain [PATH] [--max-bytes N] [--min-frame N]`: compact the files under PATH (merge
//! small frames across version boundaries) and remove retired data files that no snapshot can
//! still read.
//!
//! The work is cut into transactions of at most `--max-bytes` each, so a writer waiting for the
//! lock (a `follow`) gets it in between. Each transaction first removes the data files retired by
//! earlier commits (only if no snapshot is open anywhere), then compacts files in path order
//! until its budget is spent. The loop ends with a transaction that finds nothing to compact; it
//! removes what the compactions before it retired. A pond with nothing to do commits nothing.

use super::{Env, pond_path};
use crate::output;
use pond_store::{CompactLimits, CompactReport, GarbageReport};
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
    let under = pond_path(path.unwrap_or("/"))?;
    let mut files: BTreeMap<String, CompactReport> = BTreeMap::new();
    let mut retired = GarbageReport::default();
    let mut txns = Vec::new();
    let mut passes = 0;
    loop {
        passes += 1;
        if passes > 1 {
            // Let a waiting writer (a running `follow`) in between passes: the writer lock is
            // polled every 25 ms, and taking it back at once would starve it.
            std::thread::sleep(PAUSE_BETWEEN_PASSES);
        }
        let mut txn = env.begin()?;
        let collected = txn.collect_garbage()?;
        retired.add(&collected);
        let pass = txn.compact_all(&under, &limits)?;
        let summary = format!(
            "maintain {under}: {} file(s) compacted, {} retired data file(s) removed, {} cut",
            pass.len(),
            collected.removed_files,
            collected.cut_files
        );
        if let Some(number) = txn.commit(&summary)? {
            txns.push(number);
        }
        if pass.is_empty() {
            break;
        }
        if passes >= MAX_PASSES {
            // A writer adding small frames as fast as they are merged would keep this going.
            tracing::warn!(
                "stopping after {MAX_PASSES} passes; run `pond maintain` again for the rest"
            );
            break;
        }
        // Go on even when this pass did not run out of budget: the next one removes what
        // this one retired. Every pass that compacts lowers the frame count, so this ends.
        for (path, report) in pass {
            files
                .entry(path.to_string())
                .and_modify(|merged| merged.then(&report))
                .or_insert(report);
        }
    }
    let report = Report {
        txns,
        files: files
            .into_iter()
            .map(|(path, report)| Compacted { path, report })
            .collect(),
        retired,
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
    let r = &report.retired;
    if r.removed_files + r.cut_files + r.waiting > 0 {
        writeln!(
            out,
            "retired data files: {} removed, {} cut, {} bytes freed, {} waiting for open snapshots",
            r.removed_files, r.cut_files, r.freed_bytes, r.waiting
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
    writeln!(out, "{} file(s) compacted ({txn_text})", report.files.len())?;
    Ok(ExitCode::SUCCESS)
}
