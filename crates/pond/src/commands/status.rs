//! `pond status`: every factory node, its last run, its lag and its last error.

use super::Env;
use crate::output;
use pond_factory::runner::NodeReport;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct StatusReport {
    nodes: Vec<NodeReport>,
}

/// How long ago `unix_secs` was, for people.
fn ago(unix_secs: f64) -> String {
    let secs = (pond_factory::runs::unix_now() - unix_secs).max(0.0);
    match secs {
        s if s < 120.0 => format!("{s:.0} s ago"),
        s if s < 7200.0 => format!("{:.0} min ago", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h ago", s / 3600.0),
        s => format!("{:.1} days ago", s / 86_400.0),
    }
}

/// Prints the status; exits 1 when a node's last run failed, a running node's last step failed,
/// its process died, or its factory reports an error, so that a monitoring check can run
/// `pond status` as it is.
pub fn run(env: &Env<'_>, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let runner = super::factory::runner(env, "pond run".to_string());
    let nodes = runner.status()?;
    let unhealthy = nodes
        .iter()
        .any(pond_factory::runner::NodeReport::is_unhealthy);
    if json {
        output::json(out, &StatusReport { nodes })?;
    } else if nodes.is_empty() {
        writeln!(out, "no factory nodes (add one with `pond mknod`)")?;
    } else {
        writeln!(
            out,
            "{:<24} {:<8} {:<10} {:>14} {:>6}  last run",
            "node", "factory", "state", "lag bytes", "files"
        )?;
        for node in &nodes {
            let last = node
                .last_run
                .as_ref()
                .map(|r| {
                    let txn = r.txn.map(|t| format!(", txn {t}")).unwrap_or_default();
                    let steps = if r.steps > 0 {
                        format!(", {} steps", r.steps)
                    } else {
                        String::new()
                    };
                    format!(
                        "`{}` pid {} {}{txn}{steps}",
                        r.command,
                        r.pid,
                        ago(r.updated)
                    )
                })
                .unwrap_or_else(|| "-".to_string());
            writeln!(
                out,
                "{:<24} {:<8} {:<10} {:>14} {:>6}  {last}",
                node.path,
                node.factory,
                node.state,
                node.status
                    .lag_bytes
                    .map_or("-".to_string(), |l| l.to_string()),
                node.status.files.map_or("-".to_string(), |f| f.to_string()),
            )?;
            if let Some(error) = node.last_run.as_ref().and_then(|r| r.error.as_ref()) {
                writeln!(out, "{:<24} last run error: {error}", "")?;
            }
            if let Some(error) = &node.status.last_error {
                writeln!(out, "{:<24} last error: {error}", "")?;
            }
            if let Some(note) = &node.status.note {
                writeln!(out, "{:<24} note: {note}", "")?;
            }
        }
    }
    Ok(if unhealthy {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
