//! `pond copy HOSTFILE... PONDDIR`: store host files as new pond files, streamed, in one
//! transaction.

use super::{Env, pond_path};
use crate::output;
use anyhow::Context;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct Copied {
    host_path: String,
    path: String,
    id: i64,
    bytes: u64,
    blake3: String,
}

#[derive(Serialize)]
struct Report {
    txn: Option<u64>,
    files: Vec<Copied>,
}

pub fn run(
    env: &Env<'_>,
    paths: &[String],
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (dir, hosts) = paths
        .split_last()
        .context("give host files and a pond directory")?;
    let dir = pond_path(dir)?;
    let mut txn = env.begin()?;
    let dir_node = txn.resolve(&dir)?;
    if dir_node.kind != pond_store::NodeKind::Dir {
        anyhow::bail!("{dir}: not a directory in the pond");
    }
    let mut files = Vec::new();
    for host in hosts {
        let name = std::path::Path::new(host)
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{host}: no usable file name"))?;
        let mut source =
            std::fs::File::open(host).with_context(|| format!("{host}: cannot open"))?;
        if source
            .metadata()
            .with_context(|| format!("{host}: cannot stat"))?
            .is_dir()
        {
            anyhow::bail!("{host}: is a directory");
        }
        let path = dir.join(name)?;
        let node = txn.create_file(&path)?;
        let version = txn
            .append(&node, &mut source, None)
            .with_context(|| format!("storing {host} as {path}"))?;
        files.push(Copied {
            host_path: host.clone(),
            path: path.to_string(),
            id: node.id,
            bytes: version.total_len,
            blake3: version.root.to_hex().to_string(),
        });
    }
    let summary = match files.as_slice() {
        [one] => format!("copy {} -> {}", one.host_path, one.path),
        many => format!("copy {} files -> {dir}", many.len()),
    };
    let txn = txn.commit(&summary)?;
    let report = Report { txn, files };
    if json {
        output::json(out, &report)?;
    } else {
        for file in &report.files {
            writeln!(out, "{}  {}  {} bytes", file.blake3, file.path, file.bytes)?;
        }
        writeln!(
            out,
            "{} file(s) stored ({})",
            report.files.len(),
            output::txn_text(txn)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
