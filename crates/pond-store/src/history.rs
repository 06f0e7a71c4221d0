//! History folding: the catalog keeps O(files + retained history points), not O(steps).
//!
//! A `follow` commits up to ten times a second, each commit a transaction row and a version row
//! per changed file. [`Transaction::fold_history`] thins that history with the pond's
//! [`HistoryPolicy`]:
//!
//! - every transaction and version younger than `recent` stays as it is;
//! - older ones are kept at one point per `interval` (UTC-aligned buckets of that length): per
//!   file, the last version committed in each bucket stays and the versions before it in the
//!   same bucket are folded into it (its segment then covers them all and its segment hash is
//!   no longer recorded; its length, BLAKE3 root and tree frontier, and so its outboard, are
//!   exactly what they were); the transactions of each bucket become one record that says how
//!   many there were, by which commands, from when to when, and keeps the summaries of the
//!   rare ones (commands that ran at most [`NOTE_LIMIT`] times in it).
//!
//! The latest version of a file is always kept (it is the last of its bucket). Folding reads no
//! content: it deletes and rewrites catalog rows only, in the caller's transaction, so a crash
//! leaves the history either folded or not. It is incremental: the setting
//! `folded_through_txn` remembers the last transaction folded, and each call looks only at
//! transactions after it and at the files changed since (`nodes.changed_txn`), so its cost
//! follows what happened since the last call. Changing the policy applies to what is folded
//! from then on.

use crate::error::{Result, StoreError};
use crate::txn::Transaction;
use crate::view::{TxnRecord, View, txn_record_from_row};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings keys of the policy and of folding's progress.
const RECENT_KEY: &str = "history_recent_secs";
const INTERVAL_KEY: &str = "history_interval_secs";
const FOLDED_THROUGH_KEY: &str = "folded_through_txn";

/// Commands that ran at most this many times in a folded bucket keep their summaries in it.
pub const NOTE_LIMIT: u64 = 3;
/// Summaries kept per folded record, at most.
const MAX_NOTES: usize = 50;
/// Characters of a summary kept in a note.
const NOTE_CHARS: usize = 300;

/// How much history the pond keeps (settings `history_recent_secs`, `history_interval_secs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryPolicy {
    /// Everything younger than this is kept as committed.
    pub recent: Duration,
    /// Beyond `recent`, one point per this much time: per file the last version of each
    /// bucket, and one record per bucket for the transactions.
    pub interval: Duration,
}

impl Default for HistoryPolicy {
    fn default() -> Self {
        Self {
            recent: Duration::from_secs(5 * 60),
            interval: Duration::from_secs(10 * 60),
        }
    }
}

impl HistoryPolicy {
    /// Checks the values: `interval` at least one second, both at most ten years.
    pub fn validate(&self) -> Result<()> {
        let ten_years = Duration::from_secs(10 * 366 * 86_400);
        if self.interval < Duration::from_secs(1) || self.interval > ten_years {
            return Err(StoreError::InvalidSetting {
                key: "history interval".to_string(),
                reason: format!(
                    "{} s is not between 1 s and ten years",
                    self.interval.as_secs_f64()
                ),
            });
        }
        if self.recent > ten_years {
            return Err(StoreError::InvalidSetting {
                key: "history recent".to_string(),
                reason: format!("{} s is over ten years", self.recent.as_secs_f64()),
            });
        }
        Ok(())
    }

    fn bucket(&self, unix: f64) -> i64 {
        (unix / self.interval.as_secs_f64()).floor() as i64
    }
}

/// What a folded transaction record stands for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Folded {
    /// Transactions folded into the record.
    pub count: u64,
    /// When the first of them committed (`time` is the last one's).
    pub first_time: String,
    /// How many came from each command line, most frequent first.
    pub commands: Vec<FoldedCommand>,
    /// The summaries of the transactions of rare commands (see [`NOTE_LIMIT`]).
    pub notes: Vec<FoldedNote>,
}

/// One command line of a folded record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldedCommand {
    pub argv: Vec<String>,
    pub count: u64,
}

/// One transaction's summary kept in a folded record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldedNote {
    pub txn: u64,
    pub time: String,
    pub summary: String,
}

impl Folded {
    /// The record's one-line summary.
    pub fn summary(&self) -> String {
        let commands: Vec<String> = self
            .commands
            .iter()
            .take(5)
            .map(|c| format!("{} × {}", c.count, c.argv.join(" ")))
            .collect();
        let more = self.commands.len().saturating_sub(5);
        format!(
            "{} transactions folded: {}{}",
            self.count,
            commands.join("; "),
            if more > 0 {
                format!("; {more} more command lines")
            } else {
                String::new()
            }
        )
    }

    /// The record of `records` (single transactions, or folded ones), in transaction order.
    fn of(records: &[TxnRecord]) -> Folded {
        let mut counts: BTreeMap<Vec<String>, u64> = BTreeMap::new();
        let mut out = Folded {
            first_time: records.first().map(|r| r.time.clone()).unwrap_or_default(),
            ..Folded::default()
        };
        for record in records {
            match &record.folded {
                Some(folded) => {
                    out.count += folded.count;
                    for command in &folded.commands {
                        *counts.entry(command.argv.clone()).or_default() += command.count;
                    }
                    out.notes.extend(folded.notes.iter().cloned());
                    if out.first_time.is_empty() || folded.first_time < out.first_time {
                        out.first_time = folded.first_time.clone();
                    }
                }
                None => {
                    out.count += 1;
                    *counts.entry(record.argv.clone()).or_default() += 1;
                }
            }
        }
        for record in records.iter().filter(|r| r.folded.is_none()) {
            if counts.get(&record.argv).copied().unwrap_or(0) <= NOTE_LIMIT {
                out.notes.push(FoldedNote {
                    txn: record.txn,
                    time: record.time.clone(),
                    summary: record.summary.chars().take(NOTE_CHARS).collect(),
                });
            }
        }
        out.notes.sort_by_key(|n| n.txn);
        out.notes.truncate(MAX_NOTES);
        out.commands = counts
            .into_iter()
            .map(|(argv, count)| FoldedCommand { argv, count })
            .collect();
        out.commands
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.argv.cmp(&b.argv)));
        out
    }
}

/// What one [`Transaction::fold_history`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FoldReport {
    /// Transaction records removed (folded into bucket records).
    pub txns_folded: u64,
    /// Version rows removed (folded into the version kept for their bucket).
    pub versions_folded: u64,
    /// Files whose versions were looked at.
    pub files: u64,
    /// Everything up to this transaction is now folded per the policy.
    pub through_txn: u64,
}

impl View {
    /// The pond's history policy (defaults where the pond has no setting).
    pub fn history_policy(&self) -> Result<HistoryPolicy> {
        let default = HistoryPolicy::default();
        let seconds = |key: &str, default: Duration| -> Result<Duration> {
            match self.setting(key)? {
                None => Ok(default),
                Some(text) => text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| StoreError::InvalidSetting {
                        key: key.to_string(),
                        reason: format!("{text:?} is not a number of seconds"),
                    }),
            }
        };
        Ok(HistoryPolicy {
            recent: seconds(RECENT_KEY, default.recent)?,
            interval: seconds(INTERVAL_KEY, default.interval)?,
        })
    }

    /// The pond's instance id (16 hex digits, set by `pond init`); `None` for a pond created
    /// by an older build.
    pub fn instance_id(&self) -> Result<Option<String>> {
        self.setting("instance_id")
    }

    /// A setting's value, if set.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        crate::catalog::setting(&self.conn, &self.catalog_path, key)
    }

    /// Every setting, by key.
    pub fn settings(&self) -> Result<BTreeMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM settings ORDER BY key")
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.db(e))?;
        rows.map(|r| r.map_err(|e| self.db(e))).collect()
    }

    /// A numeric setting that records progress (a transaction number), 0 when unset.
    pub(crate) fn progress_setting(&self, key: &str) -> Result<u64> {
        Ok(self.setting(key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// The record holding transaction `txn` (itself, or the folded record covering it).
    fn record_of(&self, txn: u64) -> Result<Option<TxnRecord>> {
        self.row(
            "SELECT txn, time, argv, summary, last_txn, folded FROM txns
             WHERE txn <= ?1 ORDER BY txn DESC LIMIT 1",
            [txn],
            txn_record_from_row,
        )
        .optional()
        .map_err(|e| self.db(e))
    }
}

impl Transaction {
    /// Sets a setting in this transaction.
    pub(crate) fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        self.view
            .conn
            .prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![key, value]))
            .map_err(|e| self.view.db(e))?;
        self.changed = true;
        Ok(())
    }

    /// Changes the pond's history policy (it applies to history folded from now on).
    pub fn set_history_policy(&mut self, policy: &HistoryPolicy) -> Result<()> {
        policy.validate()?;
        self.set_setting(RECENT_KEY, &policy.recent.as_secs_f64().to_string())?;
        self.set_setting(INTERVAL_KEY, &policy.interval.as_secs_f64().to_string())
    }

    /// Folds the history older than the policy's `recent` window (see the module docs).
    /// Changes nothing, and commits nothing, when there is nothing to fold.
    pub fn fold_history(&mut self) -> Result<FoldReport> {
        let policy = self.view.history_policy()?;
        policy.validate()?;
        let through = self.view.progress_setting(FOLDED_THROUGH_KEY)?;
        let cutoff = self
            .now()
            .checked_sub(policy.recent)
            .unwrap_or(std::time::UNIX_EPOCH);
        let cutoff_text = crate::rfc3339(cutoff);
        // The transactions after the last fold that are older than the cutoff. Times are
        // recorded at a fixed width, so they compare as text.
        let records: Vec<(TxnRecord, i64)> = {
            let mut stmt = self
                .view
                .conn
                .prepare_cached(
                    "SELECT txn, time, argv, summary, last_txn, folded FROM txns
                     WHERE txn > ?1 ORDER BY txn",
                )
                .map_err(|e| self.view.db(e))?;
            let mut rows = stmt.query(params![through]).map_err(|e| self.view.db(e))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| self.view.db(e))? {
                let record = txn_record_from_row(row).map_err(|e| self.view.db(e))?;
                if record.time > cutoff_text {
                    break;
                }
                let bucket = policy.bucket(time_of(&record)?);
                out.push((record, bucket));
            }
            out
        };
        let mut report = FoldReport {
            through_txn: through,
            ..FoldReport::default()
        };
        let Some(last) = records.last().map(|(r, _)| r.last_txn) else {
            return Ok(report);
        };
        // The record just before the range: its bucket may go on in the range.
        let anchor = match through {
            0 => None,
            t => self.view.record_of(t)?,
        };
        let anchor_bucket = anchor
            .as_ref()
            .map(|a| time_of(a).map(|t| policy.bucket(t)))
            .transpose()?;
        let bucket_of_txn = |txn: u64| -> Option<i64> {
            if txn > through {
                let at = records.partition_point(|(r, _)| r.txn < txn);
                records.get(at).map(|(_, b)| *b)
            } else {
                None
            }
        };
        for file in self.view.files_changed_since(through)? {
            report.versions_folded +=
                self.fold_versions(file.id, through, last, &bucket_of_txn, &policy)?;
            report.files += 1;
        }
        report.txns_folded = self.fold_txns(&records, anchor, anchor_bucket)?;
        self.set_setting(FOLDED_THROUGH_KEY, &last.to_string())?;
        report.through_txn = last;
        Ok(report)
    }

    /// Folds the versions of file `id` committed in `(through, last]`, with the version kept
    /// before them when it lies in the same bucket. Returns the version rows removed.
    fn fold_versions(
        &mut self,
        id: i64,
        through: u64,
        last: u64,
        bucket_of_txn: &dyn Fn(u64) -> Option<i64>,
        policy: &HistoryPolicy,
    ) -> Result<u64> {
        // (version, txn, total_len)
        type Row = (u64, u64, u64);
        let rows: Vec<Row> = {
            let mut stmt = self
                .view
                .conn
                .prepare_cached(
                    "SELECT version, txn, total_len FROM versions
                     WHERE node = ?1 AND txn > ?2 AND txn <= ?3 ORDER BY version",
                )
                .map_err(|e| self.view.db(e))?;
            let rows = stmt
                .query_map(params![id, through, last], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| self.view.db(e))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| self.view.db(e))?
        };
        let Some(first) = rows.first() else {
            return Ok(0);
        };
        // The version kept before the range (folded earlier, or older than the last fold).
        let before: Option<Row> = self
            .view
            .row(
                "SELECT version, txn, total_len FROM versions
                 WHERE node = ?1 AND version < ?2 ORDER BY version DESC LIMIT 1",
                params![id, first.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.view.db(e))?;
        let before_bucket = match before {
            Some((_, txn, ..)) => match self.view.record_of(txn)? {
                Some(record) => Some(policy.bucket(time_of(&record)?)),
                None => None,
            },
            None => None,
        };
        // Groups of consecutive versions in one bucket; the first may continue `before`'s.
        let mut groups: Vec<(Option<i64>, Vec<Row>)> = Vec::new();
        for row in rows {
            let bucket = bucket_of_txn(row.1);
            match groups.last_mut() {
                Some((b, members)) if *b == bucket && bucket.is_some() => members.push(row),
                _ => groups.push((bucket, vec![row])),
            }
        }
        let mut removed = 0;
        let mut base_len = before.map_or(0, |b| b.2);
        for (index, (bucket, mut members)) in groups.into_iter().enumerate() {
            if index == 0
                && let Some(previous) = before
                && bucket.is_some()
                && bucket == before_bucket
            {
                // The bucket began before the range: its kept version joins the fold.
                base_len = self.base_len_before(id, previous.0)?;
                members.insert(0, previous);
            }
            let Some(&(kept, _, total_len)) = members.last() else {
                continue;
            };
            if members.len() > 1 {
                let mut delete = self
                    .view
                    .conn
                    .prepare_cached("DELETE FROM versions WHERE node = ?1 AND version = ?2")
                    .map_err(|e| self.view.db(e))?;
                for &(version, ..) in &members[..members.len() - 1] {
                    delete
                        .execute(params![id, version])
                        .map_err(|e| self.view.db(e))?;
                    removed += 1;
                }
                drop(delete);
                self.view
                    .conn
                    .prepare_cached(
                        "UPDATE versions SET segment_len = ?3, segment_hash = NULL
                         WHERE node = ?1 AND version = ?2",
                    )
                    .and_then(|mut s| s.execute(params![id, kept, total_len - base_len]))
                    .map_err(|e| self.view.db(e))?;
            }
            base_len = total_len;
        }
        if removed > 0 {
            self.changed = true;
        }
        Ok(removed)
    }

    /// The length of file `id` before version `version` (0 for its first).
    fn base_len_before(&self, id: i64, version: u64) -> Result<u64> {
        self.view
            .row(
                "SELECT total_len FROM versions WHERE node = ?1 AND version < ?2
                 ORDER BY version DESC LIMIT 1",
                params![id, version],
                |r| r.get(0),
            )
            .optional()
            .map(|len| len.unwrap_or(0))
            .map_err(|e| self.view.db(e))
    }

    /// Replaces the records of each bucket in `records` (with `anchor`, the record before them,
    /// when it lies in the first one's bucket) by one folded record. Returns the records removed.
    fn fold_txns(
        &mut self,
        records: &[(TxnRecord, i64)],
        anchor: Option<TxnRecord>,
        anchor_bucket: Option<i64>,
    ) -> Result<u64> {
        let mut groups: Vec<Vec<TxnRecord>> = Vec::new();
        let mut last_bucket = None;
        for (index, (record, bucket)) in records.iter().enumerate() {
            if index == 0
                && let Some(anchor) = &anchor
                && anchor_bucket == Some(*bucket)
            {
                groups.push(vec![anchor.clone()]);
                last_bucket = Some(*bucket);
            }
            match groups.last_mut() {
                Some(group) if last_bucket == Some(*bucket) => group.push(record.clone()),
                _ => groups.push(vec![record.clone()]),
            }
            last_bucket = Some(*bucket);
        }
        let mut removed = 0;
        for group in groups {
            if group.len() < 2 {
                continue;
            }
            let folded = Folded::of(&group);
            let (Some(first), Some(newest)) = (group.first(), group.last()) else {
                continue;
            };
            {
                let mut delete = self
                    .view
                    .conn
                    .prepare_cached("DELETE FROM txns WHERE txn = ?1")
                    .map_err(|e| self.view.db(e))?;
                for record in &group {
                    delete.execute([record.txn]).map_err(|e| self.view.db(e))?;
                }
            }
            let details = serde_json::to_string(&folded).map_err(|e| StoreError::Corrupt {
                node: crate::catalog::ROOT_ID,
                detail: format!("folding transactions: {e}"),
            })?;
            self.view
                .conn
                .prepare_cached(
                    "INSERT INTO txns (txn, time, argv, summary, last_txn, folded)
                     VALUES (?1, ?2, '[]', ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        first.txn,
                        newest.time,
                        folded.summary(),
                        newest.last_txn,
                        details
                    ])
                })
                .map_err(|e| self.view.db(e))?;
            removed += group.len() as u64 - 1;
        }
        if removed > 0 {
            self.changed = true;
        }
        Ok(removed)
    }
}

/// Unix seconds of a record's (last) time.
fn time_of(record: &TxnRecord) -> Result<f64> {
    crate::unix_seconds(&record.time).ok_or_else(|| StoreError::Corrupt {
        node: crate::catalog::ROOT_ID,
        detail: format!(
            "transaction {} has an unreadable time {:?}",
            record.txn, record.time
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn single(txn: u64, argv: &str, summary: &str) -> TxnRecord {
        TxnRecord {
            txn,
            time: format!("2025-01-01T00:00:{:02}.000Z", txn % 60),
            argv: argv.split(' ').map(String::from).collect(),
            summary: summary.to_string(),
            last_txn: txn,
            folded: None,
        }
    }

    /// A folded record counts by command line and keeps the summaries of rare commands only.
    #[test]
    fn folded_records_count_commands_and_keep_rare_summaries() {
        let mut records: Vec<TxnRecord> = (1..=10)
            .map(|t| single(t, "pond run /etc/hl follow", "logfile follow: 1 appended"))
            .collect();
        records.insert(4, single(100, "pond mknod mongo /etc/m", "mknod /etc/m"));
        let folded = Folded::of(&records);
        assert_eq!(folded.count, 11);
        assert_eq!(folded.commands[0].count, 10);
        assert_eq!(folded.notes.len(), 1);
        assert_eq!(folded.notes[0].summary, "mknod /etc/m");
        assert!(
            folded.summary().starts_with(
                "11 transactions folded: 10 × pond run /etc/hl follow; 1 × pond mknod"
            ),
            "{}",
            folded.summary()
        );
        // Folding a folded record with more single ones adds up.
        let mut again = vec![TxnRecord {
            folded: Some(folded.clone()),
            ..single(1, "", "")
        }];
        again.push(single(20, "pond run /etc/hl follow", "x"));
        let twice = Folded::of(&again);
        assert_eq!(twice.count, 12);
        assert_eq!(twice.commands[0].count, 11);
        assert_eq!(twice.notes, folded.notes);
    }
}
