//! `pond list [GLOB] [-l]`: a directory's children, or every path matching a glob.
//!
//! Without glob characters the argument names a node: a directory lists its children, anything
//! else lists itself. With them (`*` within a component, `**` across components, `?`, `[..]`,
//! `{a,b}`) every node below the glob's fixed prefix is matched against it.

use super::{Env, pond_path};
use crate::output;
use anyhow::Context;
use pond_store::{Node, NodeKind, PondPath, View};
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

const GLOB_CHARS: &[char] = &['*', '?', '[', '{'];

pub fn run(
    env: &Env<'_>,
    glob: Option<&str>,
    long: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let snapshot = env.pond.snapshot()?;
    let nodes = matching(&snapshot, glob.unwrap_or("/"))?;
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

/// The nodes `pattern` selects, sorted by path.
pub fn matching(view: &View, pattern: &str) -> anyhow::Result<Vec<Node>> {
    if !pattern.contains(GLOB_CHARS) {
        let node = view.resolve(&pond_path(pattern)?)?;
        return Ok(if node.kind == NodeKind::Dir {
            view.children(&node)?
        } else {
            vec![node]
        });
    }
    let absolute = if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        format!("/{pattern}")
    };
    let matcher = globset::GlobBuilder::new(&absolute)
        .literal_separator(true)
        .build()
        .with_context(|| format!("invalid glob {pattern:?}"))?
        .compile_matcher();
    // Walk only below the components that hold no glob characters.
    let fixed: Vec<&str> = absolute
        .trim_start_matches('/')
        .split('/')
        .take_while(|part| !part.contains(GLOB_CHARS))
        .collect();
    let base = PondPath::parse(&format!("/{}", fixed.join("/")))?;
    let Some(base_node) = view.lookup(&base)? else {
        return Ok(Vec::new());
    };
    if base_node.kind != NodeKind::Dir {
        return Ok(Vec::new());
    }
    Ok(view
        .walk(&base_node)?
        .into_iter()
        .filter(|node| matcher.is_match(node.path.to_string()))
        .collect())
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
