//! `pond mkdir [-p] PATH...`: create directories in one transaction.

use super::{Env, pond_path};
use crate::output;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct Created {
    path: String,
    id: i64,
}

#[derive(Serialize)]
struct Report {
    txn: Option<u64>,
    dirs: Vec<Created>,
}

pub fn run(
    env: &Env<'_>,
    paths: &[String],
    parents: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let paths = paths
        .iter()
        .map(|p| pond_path(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut txn = env.begin()?;
    let mut dirs = Vec::new();
    for path in &paths {
        let node = txn.mkdir(path, parents)?;
        dirs.push(Created {
            path: path.to_string(),
            id: node.id,
        });
    }
    let names: Vec<String> = paths.iter().map(ToString::to_string).collect();
    let txn = txn.commit(&format!("mkdir {}", names.join(" ")))?;
    let report = Report { txn, dirs };
    if json {
        output::json(out, &report)?;
    } else {
        for dir in &report.dirs {
            writeln!(out, "{}", dir.path)?;
        }
        writeln!(out, "{}", output::txn_text(txn))?;
    }
    Ok(ExitCode::SUCCESS)
}
