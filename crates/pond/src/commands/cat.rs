//! `pond cat PATH [--version N]`: stream a file's content to stdout.

use super::{Env, pond_path};
use anyhow::Context;
use std::io::Write;
use std::process::ExitCode;

pub fn run(
    env: &Env<'_>,
    path: &str,
    version: Option<u64>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let path = pond_path(path)?;
    let snapshot = env.pond.snapshot()?;
    let node = snapshot.resolve_file(&path)?;
    let mut reader = snapshot.read(&node, version)?;
    std::io::copy(&mut reader, out).with_context(|| format!("reading {path}"))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
