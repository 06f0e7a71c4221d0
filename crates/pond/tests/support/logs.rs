//! The `logfile` scenario harness: a temp pond with one `logfile` node over a temp host
//! directory ([`Logs`]), driving the real `pond` binary one process per step, exactly as cron
//! would; and [`logfile_config`], the config text every test that installs a `logfile` node writes.
//!
//! Every step ends with [`Logs::check_mirror`]: each host file the config matches has exactly one
//! mirror marked as on the host (per `pond run NODE status --json`), named by its path below the
//! pattern's base; the pond's blake3 (`pond list --json`) equals `b3sum` of the host file and
//! `pond cat` equals the host bytes (compared once per pond path and content: a later check
//! whose pond blake3 and `b3sum` are unchanged does not cat again); `pond run NODE b3sum` lists
//! exactly those files and passes `b3sum --check` in the host base directory; every mirrored file
//! no longer on the host holds the bytes the test expects; nothing else lives under the mirror;
//! `pond verify` exits 0.
//!
//! [`Logs::step`] first runs `sync --dry-run --json` and asserts that it changes nothing (log and
//! listing identical) and reports exactly what the real run then reports; [`Logs::idle`] asserts
//! an idle rerun commits nothing and reads no content.
//!
//! Needs `b3sum` on PATH (`make test` installs it under `.tools/`).
// Each `tests/*.rs` is its own crate that includes all of `support`; most use only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::{TestPond, append_file, b3sum_many, keys, log_bytes, write_file};
use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The BLAKE3 chunk group the factory verifies against outboards.
pub const BLOCK: usize = 16 * 1024;
/// Where [`Logs`] installs its node.
pub const NODE: &str = "/etc/app";
/// Where [`Logs`]'s node mirrors the host files.
pub const POND_PATH: &str = "/logs/app";

/// A `logfile` node's config: its `name`, `active_pattern` and `pond_path`, then `extra` (more
/// YAML lines, each ending in a newline).
pub fn logfile_config(name: &str, active_pattern: &str, pond_path: &str, extra: &str) -> String {
    format!("name: {name}\nactive_pattern: \"{active_pattern}\"\npond_path: {pond_path}\n{extra}")
}

/// One `logfile` node over one host base directory, and what the test expects of it.
pub struct Logs {
    pub tp: TestPond,
    /// The patterns' fixed base directory on the host (mirrored names are relative to it).
    pub base: PathBuf,
    /// The node's config file, as `mknod --config-path` read it.
    pub config: PathBuf,
    active: GlobMatcher,
    archived: Option<GlobMatcher>,
    /// Host files the config matches that must NOT be mirrored (unreadable ones).
    pub skip: BTreeSet<PathBuf>,
    /// Changed archives: the pond keeps these original bytes, not the host's.
    pub diverged: BTreeMap<PathBuf, Vec<u8>>,
    /// Mirrored files no longer on the host: relative pond name -> bytes the pond must keep.
    pub kept: BTreeMap<String, Vec<u8>>,
    /// (pond path, blake3) pairs already compared byte for byte through `pond cat`.
    verified: RefCell<BTreeSet<(String, String)>>,
    /// Whether [`Logs::step`] runs and compares a dry run first.
    pub dry_run_first: bool,
    /// stderr of the last successful sync.
    pub stderr: RefCell<String>,
}

fn glob(pattern: &str) -> GlobMatcher {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .unwrap()
        .compile_matcher()
}

/// A path as UTF-8 (temp paths are).
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

impl Logs {
    /// A pond with a `logfile` node at [`NODE`] mirroring `host/<sub>/<active>` (and archives)
    /// to [`POND_PATH`]. `extra` is appended to the YAML config.
    pub fn new(sub: &str, active: &str, archived: Option<&str>, extra: &str) -> Self {
        Self::new_in(TestPond::new(), sub, active, archived, extra)
    }

    /// [`Logs::new`] in a given pond.
    pub fn new_in(
        tp: TestPond,
        sub: &str,
        active: &str,
        archived: Option<&str>,
        extra: &str,
    ) -> Self {
        let base = if sub.is_empty() {
            tp.host.clone()
        } else {
            tp.host.join(sub)
        };
        std::fs::create_dir_all(&base).unwrap();
        let archived_line = archived
            .map(|archived| format!("archived_pattern: \"{}/{archived}\"\n", base.display()))
            .unwrap_or_default();
        let config = tp.install(
            "logfile",
            NODE,
            &logfile_config(
                "app",
                &format!("{}/{active}", base.display()),
                POND_PATH,
                &format!("{archived_line}{extra}"),
            ),
        );
        Self {
            tp,
            base,
            config,
            active: glob(active),
            archived: archived.map(glob),
            skip: BTreeSet::new(),
            diverged: BTreeMap::new(),
            kept: BTreeMap::new(),
            verified: RefCell::new(BTreeSet::new()),
            dry_run_first: true,
            stderr: RefCell::new(String::new()),
        }
    }

    /// Active file `app.log`, archives `app-*.log`.
    pub fn flat(extra: &str) -> Self {
        Self::new("", "app.log", Some("app-*.log"), extra)
    }

    // --- running pond (the rest is [`TestPond`]'s, through `Deref`) ---

    /// `pond run NODE sync --json [extra...]`, whatever its exit status.
    pub fn sync_output(&self, extra: &[&str]) -> Output {
        let mut args = vec!["run", NODE, "sync", "--json"];
        args.extend_from_slice(extra);
        self.output(&args)
    }

    /// A successful sync's report.
    pub fn sync_report(&self, extra: &[&str]) -> Value {
        let out = self.sync_output(extra);
        assert!(
            out.status.success(),
            "sync {extra:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        *self.stderr.borrow_mut() = String::from_utf8_lossy(&out.stderr).into_owned();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            keys(&report),
            ["bytes_read", "bytes_written", "dry_run", "files", "txn"],
            "{report}"
        );
        report
    }

    /// Everything a dry run must leave alone: the log and the listing under the mirror.
    pub fn snapshot(&self) -> (Value, Value) {
        (self.json(&["log"]), self.listing())
    }

    pub fn listing(&self) -> Value {
        self.json(&["list", &format!("{POND_PATH}/**")])
    }

    pub fn last_txn(&self) -> u64 {
        self.json(&["log"])["transactions"][0]["txn"]
            .as_u64()
            .unwrap()
    }

    /// `sync --dry-run`, asserting it changes nothing; returns its report.
    pub fn dry_run(&self, ctx: &str) -> Value {
        let before = self.snapshot();
        let dry = self.sync_report(&["--dry-run"]);
        assert_eq!(dry["dry_run"], true, "{ctx}: {dry}");
        assert_eq!(
            dry["txn"],
            Value::Null,
            "{ctx}: a dry run commits nothing: {dry}"
        );
        let after = self.snapshot();
        assert_eq!(before.0, after.0, "{ctx}: dry run changed the pond log");
        assert_eq!(before.1, after.1, "{ctx}: dry run changed the mirror");
        dry
    }

    /// One sync step: dry run (compared), real run, then the full mirror check. `expect` lists
    /// every file whose action is not `unchanged`, by name relative to the pond path.
    pub fn step(&self, ctx: &str, expect: &[(&str, &str)]) -> Value {
        let dry = self.dry_run_first.then(|| self.dry_run(ctx));
        let before = self.last_txn();
        let report = self.sync_report(&[]);
        assert_eq!(report["dry_run"], false, "{ctx}");
        let expect: BTreeMap<String, String> = expect
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect();
        assert_eq!(changed(&report), expect, "{ctx}: report {report}");
        if let Some(dry) = dry {
            assert_eq!(
                file_rows(&dry),
                file_rows(&report),
                "{ctx}: the dry run reported other actions than the real run"
            );
        }
        if expect.is_empty() {
            assert_eq!(report["bytes_written"], 0, "{ctx}: {report}");
        } else if expect.values().all(|a| a == "changed_archive") {
            // Reported, nothing stored: a run that changes nothing commits nothing.
            assert_eq!(report["txn"], Value::Null, "{ctx}: {report}");
            assert_eq!(self.last_txn(), before, "{ctx}");
        } else {
            assert_eq!(report["txn"], before + 1, "{ctx}: {report}");
            assert_eq!(self.last_txn(), before + 1, "{ctx}");
        }
        self.check_mirror(ctx);
        report
    }

    /// A rerun with nothing to do: no transaction, every file unchanged, nothing read.
    pub fn idle(&self, ctx: &str) {
        let log = self.json(&["log"]);
        let report = self.step(ctx, &[]);
        assert_eq!(
            report["txn"],
            Value::Null,
            "{ctx}: idle rerun committed: {report}"
        );
        assert_eq!(
            report["bytes_read"], 0,
            "{ctx}: idle rerun read content: {report}"
        );
        assert_eq!(
            self.json(&["log"]),
            log,
            "{ctx}: idle rerun changed the log"
        );
    }

    pub fn status_rows(&self) -> Vec<Value> {
        let status = self.json(&["run", NODE, "status"]);
        assert_eq!(status["name"], "app");
        status["files"].as_array().unwrap().clone()
    }

    // --- the pond side ---

    pub fn pond(name: &str) -> String {
        format!("{POND_PATH}/{name}")
    }

    pub fn id(&self, name: &str) -> i64 {
        let listed = self.json(&["list", &Self::pond(name)]);
        let entries = listed["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{name}: {listed}");
        entries[0]["id"].as_i64().unwrap()
    }

    /// `pond show --json` versions of a mirrored file.
    pub fn versions(&self, name: &str) -> Vec<Value> {
        self.json(&["show", &Self::pond(name)])["versions"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// (segment_len of each version) of a mirrored file.
    pub fn segments(&self, name: &str) -> Vec<u64> {
        self.versions(name)
            .iter()
            .map(|v| v["segment_len"].as_u64().unwrap())
            .collect()
    }

    /// Mirrored file entries (kind file) under the pond path: relative name -> entry.
    pub fn mirrored(&self) -> BTreeMap<String, Value> {
        self.listing()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "file")
            .map(|e| (rel(e["path"].as_str().unwrap()), e.clone()))
            .collect()
    }

    // --- the host side ---

    pub fn host(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) {
        write_file(&self.host(name), bytes);
    }

    pub fn append(&self, name: &str, bytes: &[u8]) {
        append_file(&self.host(name), bytes);
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.host(name)).unwrap()
    }

    pub fn read_opt(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host(name)).ok()
    }

    pub fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.host(from), self.host(to)).unwrap();
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.host(name)).unwrap();
    }

    /// Rewrites a file in place (same inode): truncate, then write `bytes`.
    pub fn rewrite_in_place(&self, name: &str, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.host(name))
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    /// logrotate `copytruncate`: copy the active file to `archive`, truncate it in place.
    pub fn copytruncate(&self, active: &str, archive: &str) {
        std::fs::copy(self.host(active), self.host(archive)).unwrap();
        OpenOptions::new()
            .write(true)
            .open(self.host(active))
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    /// Moves a file's mtime one second on (a same-size rewrite that a coarse clock could hide).
    pub fn bump_mtime(&self, name: &str) {
        let file = OpenOptions::new()
            .write(true)
            .open(self.host(name))
            .unwrap();
        let mtime = file.metadata().unwrap().modified().unwrap();
        file.set_modified(mtime + Duration::from_secs(1)).unwrap();
    }

    /// Every host file the config matches: relative name -> path.
    pub fn host_files(&self) -> BTreeMap<String, PathBuf> {
        let mut found = BTreeMap::new();
        let mut dirs = vec![self.base.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    dirs.push(path);
                } else if meta.is_file() {
                    let name = s(path.strip_prefix(&self.base).unwrap()).to_string();
                    if self.active.is_match(&name)
                        || self.archived.as_ref().is_some_and(|a| a.is_match(&name))
                    {
                        found.insert(name, path);
                    }
                }
            }
        }
        found
    }

    // --- the check ---

    /// See the module doc.
    pub fn check_mirror(&self, ctx: &str) {
        let host: BTreeMap<String, PathBuf> = self
            .host_files()
            .into_iter()
            .filter(|(_, p)| !self.skip.contains(p))
            .collect();
        let rows = self.status_rows();
        let mut on_host: BTreeMap<String, &Value> = BTreeMap::new();
        let mut off_host: BTreeMap<String, &Value> = BTreeMap::new();
        for row in &rows {
            let name = rel(row["path"].as_str().unwrap());
            if row["on_host"] == true {
                let host_path = row["host_path"].as_str().unwrap().to_string();
                assert!(
                    on_host.insert(host_path.clone(), row).is_none(),
                    "{ctx}: two mirrors of {host_path}: {rows:?}"
                );
            } else {
                off_host.insert(name, row);
            }
        }
        let host_paths: BTreeSet<String> = host.values().map(|p| s(p).to_string()).collect();
        let mirrored_paths: BTreeSet<String> = on_host.keys().cloned().collect();
        assert_eq!(
            mirrored_paths, host_paths,
            "{ctx}: status's files on the host are not the host files the config matches"
        );

        let entries = self.mirrored();
        let row_names: BTreeSet<String> = rows
            .iter()
            .map(|r| rel(r["path"].as_str().unwrap()))
            .collect();
        let entry_names: BTreeSet<String> = entries.keys().cloned().collect();
        assert_eq!(
            entry_names, row_names,
            "{ctx}: files under {POND_PATH} are not the files status tracks"
        );

        let paths: Vec<&Path> = host.values().map(PathBuf::as_path).collect();
        let hashes = b3sum_many(&paths);
        for (name, path) in &host {
            let row = on_host[s(path)];
            assert_eq!(
                row["path"],
                Self::pond(name),
                "{ctx}: {} is mirrored under another name",
                path.display()
            );
            let entry = &entries[name];
            let expected = match self.diverged.get(path) {
                Some(original) => original.clone(),
                None => std::fs::read(path).unwrap(),
            };
            let hash = match self.diverged.get(path) {
                Some(original) => blake3::hash(original).to_hex().to_string(),
                None => hashes[path.as_path()].clone(),
            };
            self.check_file(ctx, name, entry, &expected, &hash);
            assert_eq!(row["size"], expected.len(), "{ctx}: status size of {name}");
        }
        let kept_names: BTreeSet<String> = self.kept.keys().cloned().collect();
        let off_names: BTreeSet<String> = off_host.keys().cloned().collect();
        assert_eq!(
            off_names, kept_names,
            "{ctx}: the mirrored files no longer on the host are not the expected ones"
        );
        for (name, bytes) in &self.kept {
            let hash = blake3::hash(bytes).to_hex().to_string();
            self.check_file(ctx, name, &entries[name], bytes, &hash);
        }

        // `pond run NODE b3sum` lists the files on the host and passes `b3sum --check`.
        let listing = self.ok(&["run", NODE, "b3sum"]);
        let mut listed = BTreeMap::new();
        for line in listing.lines() {
            let (hex, name) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("{ctx}: b3sum line {line:?}"));
            assert_eq!(hex.len(), 64, "{ctx}: {line:?}");
            assert!(
                listed.insert(name.to_string(), hex.to_string()).is_none(),
                "{ctx}: {name} listed twice"
            );
        }
        let names: BTreeSet<String> = host.keys().cloned().collect();
        let listed_names: BTreeSet<String> = listed.keys().cloned().collect();
        assert_eq!(listed_names, names, "{ctx}: pond b3sum lists other files");
        let sums = self.tp.tmp.path().join("b3sums.txt");
        std::fs::write(&sums, &listing).unwrap();
        let check = Command::new("b3sum")
            .arg("--check")
            .arg(&sums)
            .current_dir(&self.base)
            .output()
            .unwrap();
        let failed: BTreeSet<String> = String::from_utf8_lossy(&check.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(": FAILED"))
            .map(str::to_string)
            .collect();
        let diverged: BTreeSet<String> = self
            .diverged
            .keys()
            .map(|p| s(p.strip_prefix(&self.base).unwrap()).to_string())
            .collect();
        assert_eq!(
            failed,
            diverged,
            "{ctx}: b3sum --check: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        assert_eq!(check.status.success(), diverged.is_empty(), "{ctx}");

        let verify = self.output(&["verify", "--json"]);
        assert!(
            verify.status.success(),
            "{ctx}: pond verify: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }

    /// One mirrored file against the bytes it must hold (`pond cat` once per content).
    pub fn check_file(&self, ctx: &str, name: &str, entry: &Value, bytes: &[u8], hash: &str) {
        assert_eq!(entry["kind"], "file", "{ctx}: {name}: {entry}");
        assert_eq!(entry["size"], bytes.len(), "{ctx}: size of {name}");
        assert_eq!(
            entry["blake3"].as_str(),
            Some(hash),
            "{ctx}: pond blake3 of {name} differs from b3sum of the host file"
        );
        let key = (Self::pond(name), hash.to_string());
        if !self.verified.borrow().contains(&key) {
            self.assert_cat_eq(&key.0, bytes, ctx);
            self.verified.borrow_mut().insert(key);
        }
    }
}

/// A `Logs` runs `pond` as its [`TestPond`] does (`logs.ok(...)`, `logs.cat(...)`, ...).
impl std::ops::Deref for Logs {
    type Target = TestPond;

    fn deref(&self) -> &TestPond {
        &self.tp
    }
}

/// The name of a pond path relative to [`POND_PATH`].
pub fn rel(path: &str) -> String {
    path.strip_prefix(POND_PATH)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or_else(|| panic!("{path} is not under {POND_PATH}"))
        .to_string()
}

/// Relative name -> action of every file in a sync report whose action is not `unchanged`.
pub fn changed(report: &Value) -> BTreeMap<String, String> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] != "unchanged")
        .map(|f| {
            (
                rel(f["path"].as_str().unwrap()),
                f["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A report's files, sorted, for comparing a dry run with a real run.
fn file_rows(report: &Value) -> Vec<String> {
    let mut rows: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(keys(f), ["action", "bytes", "host_path", "path"], "{f}");
            f.to_string()
        })
        .collect();
    rows.sort();
    rows
}

/// A report entry by relative name.
pub fn file<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == Logs::pond(name))
        .unwrap_or_else(|| panic!("{name} not in report {report}"))
}

pub fn bytes_of(report: &Value, name: &str) -> u64 {
    file(report, name)["bytes"].as_u64().unwrap()
}

/// `len` bytes of log lines: `seed` picks the content.
pub fn lines(len: usize, seed: u64) -> Vec<u8> {
    log_bytes(len, seed)
}

pub fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `(name, action)` pairs as [`Logs::step`] takes them.
pub fn pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect()
}
