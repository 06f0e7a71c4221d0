//! `pond log [--limit N]`: transactions, newest first. Old ones folded by the history policy
//! show as one record per bucket: the range, how many, by which commands, and the summaries of
//! the rare ones.

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
        match &t.folded {
            None => {
                writeln!(out, "txn {:<6} {}  {}", t.txn, t.time, t.summary)?;
                writeln!(out, "           $ {}", t.argv.join(" "))?;
            }
            Some(folded) => {
                writeln!(
                    out,
                    "txn {}-{} {} .. {}  {}",
                    t.txn, t.last_txn, folded.first_time, t.time, t.summary
                )?;
                for note in &folded.notes {
                    writeln!(
                        out,
                        "           txn {} {}  {}",
                        note.txn, note.time, note.summary
                    )?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
