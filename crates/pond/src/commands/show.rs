//! `pond show PATH`: a row per version of a file. After history folding a row may stand for
//! several appends (`first_version` to `version`); its segment hash is then not recorded.

use super::{Env, pond_path};
use crate::output;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct Row {
    version: u64,
    /// The first append this row covers (`version` unless folded).
    first_version: u64,
    txn: u64,
    segment_len: u64,
    /// `null` for a folded row.
    segment_blake3: Option<String>,
    total_len: u64,
    blake3: String,
}

#[derive(Serialize)]
struct Report {
    path: String,
    id: i64,
    versions: Vec<Row>,
}

pub fn run(env: &Env<'_>, path: &str, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let path = pond_path(path)?;
    let snapshot = env.pond.snapshot()?;
    let node = snapshot.resolve_file(&path)?;
    let mut previous = 0;
    let versions = snapshot
        .versions(node.id)?
        .into_iter()
        .map(|v| {
            let row = Row {
                version: v.version,
                first_version: previous + 1,
                txn: v.txn,
                segment_len: v.segment_len,
                segment_blake3: v.segment_hash.map(|h| h.to_hex().to_string()),
                total_len: v.total_len,
                blake3: v.root.to_hex().to_string(),
            };
            previous = v.version;
            row
        })
        .collect();
    let report = Report {
        path: path.to_string(),
        id: node.id,
        versions,
    };
    if json {
        output::json(out, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{} (node {})", report.path, report.id)?;
    writeln!(
        out,
        "{:>7} {:>6} {:>14} {:>14}  blake3",
        "version", "txn", "segment", "total"
    )?;
    for row in &report.versions {
        let version = if row.first_version == row.version {
            row.version.to_string()
        } else {
            format!("{}-{}", row.first_version, row.version)
        };
        writeln!(
            out,
            "{:>7} {:>6} {:>14} {:>14}  {}",
            version, row.txn, row.segment_len, row.total_len, row.blake3
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
