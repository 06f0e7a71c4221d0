//! `pond verify [PATH]`: re-read stored bytes, check every hash and outboard; exit 1 on any
//! problem, naming each corrupt file and version.

use super::{Env, pond_path};
use crate::output;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct Report {
    ok: bool,
    #[serde(flatten)]
    report: pond_store::verify::Report,
}

pub fn run(
    env: &Env<'_>,
    path: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let start = pond_path(path.unwrap_or("/"))?;
    let snapshot = env.pond.snapshot()?;
    let report = pond_store::verify::verify(&snapshot, &start)?;
    let ok = report.problems.is_empty();
    if json {
        output::json(out, &Report { ok, report })?;
    } else {
        for problem in &report.problems {
            match problem.version {
                Some(v) => writeln!(
                    out,
                    "CORRUPT {} version {v}: {}",
                    problem.path, problem.detail
                )?,
                None => writeln!(out, "CORRUPT {}: {}", problem.path, problem.detail)?,
            }
        }
        writeln!(
            out,
            "{}: {} file(s), {} version(s), {} bytes checked, {} problem(s)",
            if ok { "ok" } else { "FAILED" },
            report.files,
            report.versions,
            report.bytes,
            report.problems.len()
        )?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
