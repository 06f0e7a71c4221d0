//! `pond init`: create a pond.

use crate::output;
use pond_store::{Compression, Pond};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Serialize)]
struct Report<'a> {
    pond: &'a Path,
    compression: String,
}

pub fn run(
    dir: &Path,
    compression: &str,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let compression = Compression::parse(compression)?;
    let pond = Pond::init(dir, compression)?;
    let report = Report {
        pond: pond.dir(),
        compression: pond.compression().to_string(),
    };
    if json {
        output::json(out, &report)?;
    } else {
        writeln!(
            out,
            "created pond {} (compression {})",
            dir.display(),
            report.compression
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
