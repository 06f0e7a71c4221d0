//! `pond log [--limit N]`: transactions, newest first.

use super::Env;
use crate::output;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct Report {
    transactions: Vec<pond_store::TxnRecord>,
}

pub fn run(
    env: &Env<'_>,
    limit: Option<u64>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let snapshot = env.pond.snapshot()?;
    let transactions = snapshot.transactions(limit)?;
    if json {
        output::json(out, &Report { transactions })?;
        return Ok(ExitCode::SUCCESS);
    }
    for t in &transactions {
        writeln!(out, "txn {:<6} {}  {}", t.txn, t.time, t.summary)?;
        writeln!(out, "           $ {}", t.argv.join(" "))?;
    }
    Ok(ExitCode::SUCCESS)
}
