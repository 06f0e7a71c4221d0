//! `pond mkdir [-p] PATH`.

use super::{Env, pond_path};
use crate::output;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct Report {
    path: String,
    id: i64,
    txn: Option<u64>,
}

pub fn run(env: &Env<'_>, path: &str, parents: bool, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let path = pond_path(path)?;
    let mut txn = env.begin()?;
    let node = txn.mkdir(&path, parents)?;
    let txn = txn.commit(&format!("mkdir {path}"))?;
    let report = Report {
        path: path.to_string(),
        id: node.id,
        txn,
    };
    if json {
        output::json(out, &report)?;
    } else {
        writeln!(out, "{} ({})", report.path, output::txn_text(txn))?;
    }
    Ok(ExitCode::SUCCESS)
}
