//! `pond list [GLOB] [-l]`: a directory's children, or every path matching a glob.
//!
//! Selection is [`pond_store::View::select`]: a directory lists its children, a file or
//! factory node itself, and a glob (`*` within a component, `**` across components, `?`,
//! `[..]`, `{a,b}`) every node below its fixed prefix that matches.

use super::Env;
use crate::output;
use pond_store::{Node, NodeKind, View};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
pub struct Entry {
    path: String,
    kind: NodeKind,
    id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blake3: Option<String>,
}

#[derive(Serialize)]
struct Report {
    entries: Vec<Entry>,
}

pub fn run(
    env: &Env<'_>,
    glob: Option<&str>,
    long: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let snapshot = env.pond.snapshot()?;
    let nodes = snapshot.select(glob.unwrap_or("/"))?;
    let entries = nodes
        .into_iter()
        .map(|node| describe(&snapshot, node))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        output::json(out, &Report { entries })?;
        return Ok(ExitCode::SUCCESS);
    }
    for entry in &entries {
        if long {
            let kind = match entry.kind {
                NodeKind::Dir => "dir",
                NodeKind::File => "file",
                NodeKind::Factory => "factory",
            };
            let size = entry
                .size
                .map_or_else(|| "-".to_string(), |s| s.to_string());
            let versions = entry
                .versions
                .map_or_else(|| "-".to_string(), |v| format!("v{v}"));
            writeln!(
                out,
                "{kind:<7} {size:>14} {versions:>6} {:>7}  {}",
                entry.id, entry.path
            )?;
        } else {
            writeln!(out, "{}", entry.path)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(view: &View, node: Node) -> anyhow::Result<Entry> {
    let latest = if node.kind == NodeKind::File {
        view.latest_version(node.id)?
    } else {
        None
    };
    let is_file = node.kind == NodeKind::File;
    Ok(Entry {
        path: node.path.to_string(),
        kind: node.kind,
        id: node.id,
        size: is_file.then(|| latest.as_ref().map_or(0, |v| v.total_len)),
        versions: is_file.then(|| latest.as_ref().map_or(0, |v| v.version)),
        blake3: latest.map(|v| v.root.to_hex().to_string()),
    })
}
