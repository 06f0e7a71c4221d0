//! `pond settings [--history-recent D] [--history-interval D]`: the pond's settings, and the
//! history policy (how much history `pond maintain` and `follow` keep; see docs/format.md).

use super::Env;
use crate::output;
use anyhow::Context;
use pond_store::HistoryPolicy;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct Report {
    /// Every setting as stored.
    settings: BTreeMap<String, String>,
    /// The history policy in effect (seconds).
    history: HistoryJson,
    /// The transaction that changed the policy, if this run changed it.
    txn: Option<u64>,
}

#[derive(Serialize)]
struct HistoryJson {
    recent_secs: f64,
    interval_secs: f64,
}

fn duration(text: &str, flag: &str) -> anyhow::Result<std::time::Duration> {
    humantime::parse_duration(text.trim())
        .with_context(|| format!("{flag} {text:?}: not a duration such as 5m, 1h or 1d"))
}

pub fn run(
    env: &Env<'_>,
    recent: Option<&str>,
    interval: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut txn_number = None;
    if recent.is_some() || interval.is_some() {
        let mut txn = env.begin()?;
        let current = txn.history_policy()?;
        let policy = HistoryPolicy {
            recent: recent
                .map(|t| duration(t, "--history-recent"))
                .transpose()?
                .unwrap_or(current.recent),
            interval: interval
                .map(|t| duration(t, "--history-interval"))
                .transpose()?
                .unwrap_or(current.interval),
        };
        txn.set_history_policy(&policy)?;
        txn_number = txn.commit(&format!(
            "settings: history recent {}, interval {}",
            humantime::format_duration(policy.recent),
            humantime::format_duration(policy.interval)
        ))?;
    }
    let snapshot = env.pond.snapshot()?;
    let policy = snapshot.history_policy()?;
    let report = Report {
        settings: snapshot.settings()?,
        history: HistoryJson {
            recent_secs: policy.recent.as_secs_f64(),
            interval_secs: policy.interval.as_secs_f64(),
        },
        txn: txn_number,
    };
    if json {
        output::json(out, &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (key, value) in &report.settings {
        writeln!(out, "{key:<24} {value}")?;
    }
    writeln!(
        out,
        "history: every transaction and version of the last {}; older ones, one per {} \
         (per file, the last version of each){}",
        humantime::format_duration(policy.recent),
        humantime::format_duration(policy.interval),
        txn_number
            .map(|t| format!(" (changed in txn {t})"))
            .unwrap_or_default()
    )?;
    Ok(ExitCode::SUCCESS)
}
