//! Report helpers shared by the commands.

use serde::Serialize;
use std::io::Write;

/// Writes `value` as one JSON document and a newline.
pub fn json(out: &mut dyn Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Formats a transaction number that may be absent (nothing changed).
pub fn txn_text(txn: Option<u64>) -> String {
    txn.map_or_else(|| "no changes".to_string(), |t| format!("txn {t}"))
}
