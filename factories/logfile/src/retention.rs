//! Retention (`retain:` in the config): mirrored files whose host file has been gone for that
//! long are removed from the pond, once no factory node still needs them.
//!
//! Runs as the node's upkeep ([`pond_factory::Factory::maintain`]: `pond maintain`, and
//! `follow`'s periodic maintenance), inside the maintenance transaction, so a removal is a
//! recorded transaction whose summary names each file with its size and BLAKE3. A file is
//! removed only when every factory node of the pond has read all of it (a `mongo` node's cursor
//! at its end, say); until then it stays and is looked at again a minute later (or after
//! `retain`, when shorter). The space comes
//! back when a later writer removes the data files (no snapshot can read them any more).
//!
//! The default is no retention: everything is kept. The node's summary remembers when the next
//! file comes due, so a maintenance pass with nothing due reads no file states.

use crate::config::Settings;
use crate::state::{self, gone_key};
use pond_factory::{BoxError, MaintainContext};
use pond_store::{Node, NodeKind, PondPath, Transaction};

/// How soon a file that is due but still needed downstream is looked at again, at most (and
/// at most `retain`).
const RECHECK_SECS: i64 = 60;

/// Removes the files of `ctx.node` that are due; returns the summary, if it removed any.
pub fn apply(ctx: &mut MaintainContext<'_>, source: &Settings) -> Result<Option<String>, BoxError> {
    let Some(retain) = source.retain else {
        return Ok(None);
    };
    let factory_id = ctx.node.id;
    let retain_secs = retain.as_secs();
    let now = ctx
        .txn
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut summary = state::summary(ctx.txn, factory_id)?;
    if summary.retention_for == Some(retain_secs)
        && summary.retention_due.is_none_or(|due| now < due)
    {
        return Ok(None);
    }
    let retain_secs_i = i64::try_from(retain_secs).unwrap_or(i64::MAX);
    let recheck = RECHECK_SECS.min(retain_secs_i.max(1));
    let mut due_files: Vec<Node> = Vec::new();
    let mut next_due: Option<i64> = None;
    let mut stamped = false;
    let key = gone_key(factory_id);
    for (id, value) in ctx.txn.states_with_key(&key)? {
        let mut file_state = state::parse(id, &key, &value)?;
        let Some(gone_at) = file_state.gone_unix else {
            // Gone before this build recorded when: the wait starts now.
            file_state.gone_unix = Some(now);
            pond_factory::state::store(ctx.txn, id, &key, &file_state)?;
            stamped = true;
            next_due = Some(next_due.map_or(now + retain_secs_i, |d| d.min(now + retain_secs_i)));
            continue;
        };
        let expires = gone_at.saturating_add(retain_secs_i);
        if expires <= now {
            due_files.push(Node {
                id,
                kind: NodeKind::File,
                path: ctx.txn.path_of(id)?,
            });
        } else {
            next_due = Some(next_due.map_or(expires, |d| d.min(expires)));
        }
    }
    let unsent = (ctx.unsent)(ctx.txn, &due_files);
    let mut removed = Vec::new();
    let mut kept = 0u64;
    for (file, needed) in due_files.iter().zip(unsent) {
        if needed {
            kept += 1;
            next_due = Some(next_due.map_or(now + recheck, |d| d.min(now + recheck)));
            continue;
        }
        removed.push(ctx.txn.remove_file(file)?);
        remove_empty_parents(ctx.txn, &file.path, &source.pond_path)?;
    }
    summary.gone = summary.gone.saturating_sub(removed.len() as u64);
    let changed = summary.retention_due != next_due || summary.retention_for != Some(retain_secs);
    summary.retention_due = next_due;
    summary.retention_for = Some(retain_secs);
    if changed || !removed.is_empty() || stamped {
        state::set_summary(ctx.txn, factory_id, &summary)?;
    }
    if kept > 0 {
        tracing::info!(
            node = %ctx.node.path,
            "retention: {kept} file(s) past {} kept: not yet read by every factory node",
            humantime_text(retain)
        );
    }
    if removed.is_empty() {
        return Ok(None);
    }
    let bytes: u64 = removed.iter().map(|r| r.bytes).sum();
    let names: Vec<String> = removed
        .iter()
        .map(|r| format!("{} ({} bytes, blake3 {})", r.path, r.bytes, r.blake3))
        .collect();
    tracing::info!(
        node = %ctx.node.path,
        "retention: removed {} file(s), {bytes} bytes, gone from the host for over {}",
        removed.len(),
        humantime_text(retain)
    );
    Ok(Some(format!(
        "retention {}: removed {} file(s), {bytes} bytes: {}{}",
        humantime_text(retain),
        removed.len(),
        names.join(", "),
        if kept > 0 {
            format!("; {kept} due but kept (not yet read by every factory node)")
        } else {
            String::new()
        }
    )))
}

/// Removes the directories above `path` that are now empty, up to (not including) `base`.
fn remove_empty_parents(
    txn: &mut Transaction,
    path: &PondPath,
    base: &PondPath,
) -> Result<(), BoxError> {
    let mut current = path.parent();
    while let Some(dir) = current {
        if dir == *base || !dir.starts_with(base) {
            break;
        }
        let Some(node) = txn.lookup(&dir)? else {
            break;
        };
        if !txn.remove_empty_dir(&node)? {
            break;
        }
        current = dir.parent();
    }
    Ok(())
}

fn humantime_text(duration: std::time::Duration) -> String {
    humantime::format_duration(duration).to_string()
}
