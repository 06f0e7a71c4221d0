//! `pond init`: create a pond, private to its owner unless `--shared-group`.

use crate::output;
use pond_store::{Compression, Pond, Sharing};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Serialize)]
struct Report<'a> {
    pond: &'a Path,
    compression: String,
    /// `private` (0700 / 0600) or `group` (2750 / 0640).
    sharing: &'static str,
    instance_id: String,
}

pub fn run(
    dir: &Path,
    compression: &str,
    shared_group: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let compression = Compression::parse(compression)?;
    let sharing = if shared_group {
        Sharing::Group
    } else {
        Sharing::Private
    };
    let pond = Pond::init(dir, compression, sharing)?;
    let report = Report {
        pond: pond.dir(),
        compression: pond.compression().to_string(),
        sharing: if shared_group { "group" } else { "private" },
        instance_id: pond.snapshot()?.instance_id()?.unwrap_or_default(),
    };
    if json {
        output::json(out, &report)?;
    } else {
        writeln!(
            out,
            "created pond {} (compression {}, readable by {}, instance {})",
            dir.display(),
            report.compression,
            if shared_group {
                "its owner and its group"
            } else {
                "its owner only"
            },
            report.instance_id
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
