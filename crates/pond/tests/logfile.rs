//! Scenario suite for the `logfile` factory, driving the real `pond` binary, one process per
//! step, exactly as cron would.
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
//! Tests run as root here, where mode 000 does not stop reads: the permission test then runs
//! `pond` as uid 65534 (`nobody`) so that the real `EACCES` path is exercised.
//!
//! Needs `b3sum` on PATH: `PATH=/tmp/b3/bin:$PATH cargo test -p pond --test logfile`.
//! The crash test's kill instants come from `LOGFILE_CRASH_SEED` (hex; printed on stderr).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::{SplitMix64, TestPond, b3sum, log_bytes};

/// The BLAKE3 chunk group the factory verifies against outboards.
const BLOCK: usize = 16 * 1024;
const NODE: &str = "/etc/app";
const POND_PATH: &str = "/logs/app";
/// The unprivileged user the permission test runs `pond` as when the test runs as root.
const NOBODY: u32 = 65534;

// ---------------------------------------------------------------------------------------------
// Harness

/// One `logfile` node over one host base directory, and what the test expects of it.
struct Logs {
    tp: TestPond,
    /// The patterns' fixed base directory on the host (mirrored names are relative to it).
    base: PathBuf,
    config: PathBuf,
    active: GlobMatcher,
    archived: Option<GlobMatcher>,
    /// Run every `pond` command as this uid/gid (permission tests as root).
    run_as: Option<u32>,
    /// Host files the config matches that must NOT be mirrored (unreadable ones).
    skip: BTreeSet<PathBuf>,
    /// Changed archives: the pond keeps these original bytes, not the host's.
    diverged: BTreeMap<PathBuf, Vec<u8>>,
    /// Mirrored files no longer on the host: relative pond name -> bytes the pond must keep.
    kept: BTreeMap<String, Vec<u8>>,
    /// (pond path, blake3) pairs already compared byte for byte through `pond cat`.
    verified: RefCell<BTreeSet<(String, String)>>,
    /// Whether [`Logs::step`] runs and compares a dry run first.
    dry_run_first: bool,
    /// stderr of the last successful sync.
    stderr: RefCell<String>,
}

fn glob(pattern: &str) -> GlobMatcher {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .unwrap()
        .compile_matcher()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

impl Logs {
    /// A pond with a `logfile` node at [`NODE`] mirroring `host/<sub>/<active>` (and archives)
    /// to [`POND_PATH`]. `extra` is appended to the YAML config.
    fn new(sub: &str, active: &str, archived: Option<&str>, extra: &str) -> Self {
        Self::new_in(TestPond::new(), sub, active, archived, extra)
    }

    /// [`Logs::new`] in a given pond.
    fn new_in(tp: TestPond, sub: &str, active: &str, archived: Option<&str>, extra: &str) -> Self {
        let base = if sub.is_empty() {
            tp.host.clone()
        } else {
            tp.host.join(sub)
        };
        std::fs::create_dir_all(&base).unwrap();
        let mut yaml = format!(
            "name: app\nactive_pattern: '{}/{active}'\npond_path: {POND_PATH}\n",
            base.display()
        );
        if let Some(archived) = archived {
            yaml.push_str(&format!(
                "archived_pattern: '{}/{archived}'\n",
                base.display()
            ));
        }
        yaml.push_str(extra);
        let config = tp.tmp.path().join("cfg.yaml");
        std::fs::write(&config, yaml).unwrap();
        tp.ok(&["mknod", "logfile", NODE, "--config-path", s(&config)]);
        Self {
            tp,
            base,
            config,
            active: glob(active),
            archived: archived.map(glob),
            run_as: None,
            skip: BTreeSet::new(),
            diverged: BTreeMap::new(),
            kept: BTreeMap::new(),
            verified: RefCell::new(BTreeSet::new()),
            dry_run_first: true,
            stderr: RefCell::new(String::new()),
        }
    }

    /// Active file `app.log`, archives `app-*.log`.
    fn flat(extra: &str) -> Self {
        Self::new("", "app.log", Some("app-*.log"), extra)
    }

    // --- running pond ---

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.tp.cmd(args);
        if let Some(uid) = self.run_as {
            // The build's own binary may sit in a private directory (a clone under a 0700
            // home): run a copy that the other user can execute.
            cmd = Command::new(support::pond_bin_for_others());
            cmd.arg("--pond").arg(&self.tp.pond).args(args);
            cmd.env_remove("POND").env("POND_LOG", "warn");
            cmd.uid(uid).gid(uid);
        }
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "pond {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        serde_json::from_str(&self.ok(&with_json)).unwrap()
    }

    fn cat(&self, path: &str) -> Vec<u8> {
        let out = self.output(&["cat", path]);
        assert!(
            out.status.success(),
            "cat {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `pond run NODE sync --json [extra...]`, whatever its exit status.
    fn sync_output(&self, extra: &[&str]) -> Output {
        let mut args = vec!["run", NODE, "sync", "--json"];
        args.extend_from_slice(extra);
        self.output(&args)
    }

    /// A successful sync's report.
    fn sync_report(&self, extra: &[&str]) -> Value {
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
            support::keys(&report),
            ["bytes_read", "bytes_written", "dry_run", "files", "txn"],
            "{report}"
        );
        report
    }

    /// Everything a dry run must leave alone: the log and the listing under the mirror.
    fn snapshot(&self) -> (Value, Value) {
        (self.json(&["log"]), self.listing())
    }

    fn listing(&self) -> Value {
        self.json(&["list", &format!("{POND_PATH}/**")])
    }

    fn last_txn(&self) -> u64 {
        self.json(&["log"])["transactions"][0]["txn"]
            .as_u64()
            .unwrap()
    }

    /// `sync --dry-run`, asserting it changes nothing; returns its report.
    fn dry_run(&self, ctx: &str) -> Value {
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
    fn step(&self, ctx: &str, expect: &[(&str, &str)]) -> Value {
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
    fn idle(&self, ctx: &str) {
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

    fn status_rows(&self) -> Vec<Value> {
        let status = self.json(&["run", NODE, "status"]);
        assert_eq!(status["name"], "app");
        status["files"].as_array().unwrap().clone()
    }

    // --- the pond side ---

    fn pond(name: &str) -> String {
        format!("{POND_PATH}/{name}")
    }

    fn id(&self, name: &str) -> i64 {
        let listed = self.json(&["list", &Self::pond(name)]);
        let entries = listed["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{name}: {listed}");
        entries[0]["id"].as_i64().unwrap()
    }

    /// `pond show --json` versions of a mirrored file.
    fn versions(&self, name: &str) -> Vec<Value> {
        self.json(&["show", &Self::pond(name)])["versions"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// (segment_len of each version) of a mirrored file.
    fn segments(&self, name: &str) -> Vec<u64> {
        self.versions(name)
            .iter()
            .map(|v| v["segment_len"].as_u64().unwrap())
            .collect()
    }

    /// Mirrored file entries (kind file) under the pond path: relative name -> entry.
    fn mirrored(&self) -> BTreeMap<String, Value> {
        self.listing()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "file")
            .map(|e| (rel(e["path"].as_str().unwrap()), e.clone()))
            .collect()
    }

    // --- the host side ---

    fn host(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.host(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }

    fn append(&self, name: &str, bytes: &[u8]) {
        if let Some(parent) = self.host(name).parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.host(name))
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.host(name)).unwrap()
    }

    fn read_opt(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host(name)).ok()
    }

    fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.host(from), self.host(to)).unwrap();
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.host(name)).unwrap();
    }

    /// Rewrites a file in place (same inode): truncate, then write `bytes`.
    fn rewrite_in_place(&self, name: &str, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.host(name))
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    /// logrotate `copytruncate`: copy the active file to `archive`, truncate it in place.
    fn copytruncate(&self, active: &str, archive: &str) {
        std::fs::copy(self.host(active), self.host(archive)).unwrap();
        OpenOptions::new()
            .write(true)
            .open(self.host(active))
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    /// Moves a file's mtime one second on (a same-size rewrite that a coarse clock could hide).
    fn bump_mtime(&self, name: &str) {
        let file = OpenOptions::new()
            .write(true)
            .open(self.host(name))
            .unwrap();
        let mtime = file.metadata().unwrap().modified().unwrap();
        file.set_modified(mtime + Duration::from_secs(1)).unwrap();
    }

    /// Every host file the config matches: relative name -> path.
    fn host_files(&self) -> BTreeMap<String, PathBuf> {
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
    fn check_mirror(&self, ctx: &str) {
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
    fn check_file(&self, ctx: &str, name: &str, entry: &Value, bytes: &[u8], hash: &str) {
        assert_eq!(entry["kind"], "file", "{ctx}: {name}: {entry}");
        assert_eq!(entry["size"], bytes.len(), "{ctx}: size of {name}");
        assert_eq!(
            entry["blake3"].as_str(),
            Some(hash),
            "{ctx}: pond blake3 of {name} differs from b3sum of the host file"
        );
        let key = (Self::pond(name), hash.to_string());
        if !self.verified.borrow().contains(&key) {
            let stored = self.cat(&key.0);
            assert!(
                stored == bytes,
                "{ctx}: pond cat {name} ({} bytes) differs from the expected {} bytes{}",
                stored.len(),
                bytes.len(),
                first_difference(&stored, bytes)
            );
            self.verified.borrow_mut().insert(key);
        }
    }
}

/// The name of a pond path relative to [`POND_PATH`].
fn rel(path: &str) -> String {
    path.strip_prefix(POND_PATH)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or_else(|| panic!("{path} is not under {POND_PATH}"))
        .to_string()
}

/// Relative name -> action of every file in a sync report whose action is not `unchanged`.
fn changed(report: &Value) -> BTreeMap<String, String> {
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
            assert_eq!(
                support::keys(f),
                ["action", "bytes", "host_path", "path"],
                "{f}"
            );
            f.to_string()
        })
        .collect();
    rows.sort();
    rows
}

/// A report entry by relative name.
fn file<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == Logs::pond(name))
        .unwrap_or_else(|| panic!("{name} not in report {report}"))
}

fn bytes_of(report: &Value, name: &str) -> u64 {
    file(report, name)["bytes"].as_u64().unwrap()
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(" (first difference at byte {i})"),
        None => " (one is a prefix of the other)".to_string(),
    }
}

/// `b3sum` of many files in one process (the harness's [`b3sum`] for one).
fn b3sum_many(paths: &[&Path]) -> BTreeMap<PathBuf, String> {
    if paths.len() == 1 {
        return BTreeMap::from([(paths[0].to_path_buf(), b3sum(paths[0]))]);
    }
    let mut found = BTreeMap::new();
    for chunk in paths.chunks(500) {
        let out = Command::new("b3sum")
            .args(chunk)
            .output()
            .unwrap_or_else(|e| panic!("b3sum is needed for this test: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        for (line, path) in text.lines().zip(chunk) {
            let (hex, name) = line.split_once("  ").unwrap();
            assert_eq!(name, s(path));
            found.insert(path.to_path_buf(), hex.to_string());
        }
    }
    found
}

/// `len` bytes of log lines: `seed` picks the content.
fn lines(len: usize, seed: u64) -> Vec<u8> {
    log_bytes(len, seed)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------------------------
// 1-3. New files, appends, idle reruns

#[test]
fn first_ingest_then_idempotent_reruns() {
    let logs = Logs::flat("");
    // Edge cases, byte-exact: empty, no trailing newline, non-UTF-8, a 1 MB line.
    logs.write("app.log", b"");
    logs.write("app-empty.log", b"");
    logs.write("app-nonl.log", b"{\"a\":1}\n{\"b\":2}");
    let mut binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    binary.extend_from_slice(b"\xff\xfe\xc3\x28 not utf-8 \x80\n");
    logs.write("app-binary.log", &binary);
    let mut long_line = vec![b'x'; 1 << 20];
    long_line.extend_from_slice(b"\n{\"after\":\"the long line\"}\n");
    logs.write("app-longline.log", &long_line);
    logs.write("app-old.log", &lines(40_000, 1));
    // Not matched by either pattern: never mirrored.
    logs.write("other.log", b"not mine\n");
    logs.write("app.log.1", b"not mine either\n");

    let report = logs.step(
        "first ingest",
        &[
            ("app.log", "new"),
            ("app-empty.log", "new"),
            ("app-nonl.log", "new"),
            ("app-binary.log", "new"),
            ("app-longline.log", "new"),
            ("app-old.log", "new"),
        ],
    );
    let total: usize = 15 + binary.len() + long_line.len() + 40_000;
    assert_eq!(report["bytes_written"], total, "{report}");
    assert_eq!(report["bytes_read"], total, "{report}");
    assert_eq!(
        bytes_of(&report, "app-longline.log"),
        long_line.len() as u64
    );
    assert_eq!(bytes_of(&report, "app.log"), 0);
    for name in ["app-nonl.log", "app-binary.log", "app-longline.log"] {
        assert_eq!(logs.versions(name).len(), 1, "{name}");
    }
    let ids: BTreeMap<String, i64> = logs
        .mirrored()
        .iter()
        .map(|(n, e)| (n.clone(), e["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(ids.len(), 6, "{ids:?}");

    logs.idle("first rerun");
    logs.idle("second rerun");

    // The empty active file starts to grow; the line without newline is completed.
    logs.append("app.log", b"{\"first\":1}\n");
    logs.append("app-nonl.log", b"\n");
    let report = logs.step(
        "empty file grew, archive completed",
        &[("app.log", "appended"), ("app-nonl.log", "appended")],
    );
    assert_eq!(bytes_of(&report, "app.log"), 12);
    assert_eq!(bytes_of(&report, "app-nonl.log"), 1);
    assert_eq!(report["bytes_written"], 13);
    assert_eq!(*logs.segments("app-nonl.log").last().unwrap(), 1);
    logs.idle("rerun after appends");

    // Same bytes, newer mtime: nothing stored, and the identity is remembered so that the
    // following run is O(1) again.
    logs.bump_mtime("app-old.log");
    let report = logs.step("touched", &[]);
    assert_eq!(report["bytes_written"], 0);
    assert_eq!(logs.versions("app-old.log").len(), 1);
    logs.idle("rerun after touch");

    let after: BTreeMap<String, i64> = logs
        .mirrored()
        .iter()
        .map(|(n, e)| (n.clone(), e["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(after, ids, "node ids changed");
}

#[test]
fn large_new_file_is_one_version_and_appends_store_only_new_bytes() {
    let logs = Logs::flat("");
    let all = lines(300_000 + 4_321, 2);
    logs.write("app.log", &all[..250_001]);
    let report = logs.step("new 250 KB file", &[("app.log", "new")]);
    assert_eq!(bytes_of(&report, "app.log"), 250_001);
    let versions = logs.versions("app.log");
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0]["segment_len"], 250_001);
    assert_eq!(versions[0]["total_len"], 250_001);
    let id = logs.id("app.log");

    logs.append("app.log", &all[250_001..]);
    let report = logs.step("append", &[("app.log", "appended")]);
    let delta = all.len() as u64 - 250_001;
    assert_eq!(bytes_of(&report, "app.log"), delta);
    assert_eq!(report["bytes_written"], delta);
    assert_eq!(logs.segments("app.log"), [250_001, delta]);
    assert_eq!(logs.id("app.log"), id);
    logs.idle("rerun");
}

#[test]
fn growth_across_block_boundaries_up_to_13_mb() {
    let mut logs = Logs::flat("");
    logs.dry_run_first = false; // dry runs are compared everywhere else; this one is about size
    let total = 13 * (1 << 20) + 777;
    let all = lines(total, 3);
    let sizes = [
        1_000,
        BLOCK,
        BLOCK + 1,
        3 * BLOCK - 1,
        1_000_003,
        64 * BLOCK,
        5 << 20,
        total,
    ];
    logs.write("app.log", &all[..sizes[0]]);
    logs.step("first 1000 bytes", &[("app.log", "new")]);
    let id = logs.id("app.log");
    let mut expected_segments = vec![sizes[0] as u64];
    for pair in sizes.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        let ctx = format!("grow {old} -> {new}");
        logs.append("app.log", &all[old..new]);
        let report = logs.step(&ctx, &[("app.log", "appended")]);
        let delta = (new - old) as u64;
        assert_eq!(bytes_of(&report, "app.log"), delta, "{ctx}");
        assert_eq!(report["bytes_written"], delta, "{ctx}");
        // Sampled check: the first block, the old end's block and two samples, at most.
        let read = report["bytes_read"].as_u64().unwrap();
        assert!(
            read >= delta && read <= delta + 4 * BLOCK as u64,
            "{ctx}: read {read} bytes for a {delta}-byte append"
        );
        expected_segments.push(delta);
        assert_eq!(logs.segments("app.log"), expected_segments, "{ctx}");
        assert_eq!(logs.id("app.log"), id, "{ctx}");
    }
    logs.idle("rerun at 13 MB");
}

#[test]
fn verify_full_rehashes_the_whole_prefix() {
    let logs = Logs::flat("verify: full\n");
    let all = lines(10 * BLOCK + 100_000, 4);
    logs.write("app.log", &all[..10 * BLOCK + 5]);
    logs.step("new", &[("app.log", "new")]);
    logs.append("app.log", &all[10 * BLOCK + 5..]);
    let report = logs.step("append", &[("app.log", "appended")]);
    let read = report["bytes_read"].as_u64().unwrap();
    assert!(
        read >= all.len() as u64,
        "verify: full must re-hash the whole {}-byte prefix, read {read}",
        10 * BLOCK + 5
    );
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// 4-5. Rotation

/// `mv app.log app-1.log`, then a new `app.log` that is already larger than the tracked size
/// (and shares its first block: a common header). Not an append: the old node is renamed.
fn rotation_by_rename_new_active_larger(tracked: usize, verify: &str) {
    let logs = Logs::flat(&format!("verify: {verify}\n"));
    let old = lines(tracked, 10);
    logs.write("app.log", &old);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.rename("app.log", "app-1.log");
    let new = concat(&[&old[..BLOCK], &lines(tracked + 3 * BLOCK + 11, 11)]);
    logs.write("app.log", &new);
    let report = logs.step(
        "rotated by rename",
        &[("app-1.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 0);
    assert_eq!(bytes_of(&report, "app.log"), new.len() as u64);
    assert_eq!(logs.id("app-1.log"), id, "the archive keeps the node");
    assert_ne!(logs.id("app.log"), id);
    assert_eq!(logs.segments("app-1.log"), [tracked as u64]);
    assert_eq!(logs.segments("app.log"), [new.len() as u64]);
    logs.idle("rerun");
}

#[test]
fn rotation_by_rename_new_active_larger_odd_size() {
    rotation_by_rename_new_active_larger(3 * BLOCK + 4_321, "sample");
}

#[test]
fn rotation_by_rename_new_active_larger_block_multiple() {
    rotation_by_rename_new_active_larger(4 * BLOCK, "sample");
}

/// copytruncate, then the writer writes more than the tracked size before the next sync. The
/// new content equals the old in every block but the one holding the old end (`differ_last`),
/// or in every block but one in the middle (only `verify: full` must see that one).
fn copytruncate_new_active_larger(tracked: usize, verify: &str, differ_block: Option<usize>) {
    let logs = Logs::flat(&format!("verify: {verify}\n"));
    let old = lines(tracked, 20);
    logs.write("app.log", &old);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.copytruncate("app.log", "app-1.log");
    // Same inode, now larger than `tracked`, equal to the old bytes except in one block.
    let last = tracked.div_ceil(BLOCK) - 1;
    let block = differ_block.unwrap_or(last);
    let mut new = old.clone();
    let at = block * BLOCK + (tracked - block * BLOCK).min(BLOCK) / 2;
    new[at] ^= 0x20;
    new.extend_from_slice(&lines(2 * BLOCK + 999, 21));
    logs.append("app.log", &new);
    let report = logs.step(
        &format!("copytruncate, tracked {tracked}, block {block} differs"),
        &[("app-1.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 0);
    assert_eq!(logs.id("app-1.log"), id, "the archive keeps the node");
    assert_eq!(logs.segments("app-1.log"), [tracked as u64]);
    assert_eq!(logs.segments("app.log"), [new.len() as u64]);
    logs.idle("rerun");
}

#[test]
fn copytruncate_new_active_larger_odd_size() {
    copytruncate_new_active_larger(5 * BLOCK + 1_001, "sample", None);
}

#[test]
fn copytruncate_new_active_larger_block_multiple() {
    copytruncate_new_active_larger(5 * BLOCK, "sample", None);
}

#[test]
fn copytruncate_new_active_larger_block_multiple_single_block() {
    copytruncate_new_active_larger(BLOCK, "sample", None);
}

#[test]
fn copytruncate_new_active_differs_in_a_middle_block_verify_full() {
    copytruncate_new_active_larger(12 * BLOCK, "full", Some(6));
    copytruncate_new_active_larger(12 * BLOCK + 7, "full", Some(5));
}

#[test]
fn rotation_with_missed_bytes() {
    let logs = Logs::flat("");
    let old = lines(70_001, 30);
    logs.write("app.log", &old[..50_000]);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    // Appended after the last sync, then rotated before the next.
    logs.append("app.log", &old[50_000..]);
    logs.rename("app.log", "app-1.log");
    logs.write("app.log", &lines(90_000, 31));
    let report = logs.step(
        "missed bytes, then rotation",
        &[("app-1.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 20_001);
    assert_eq!(logs.id("app-1.log"), id);
    assert_eq!(logs.segments("app-1.log"), [50_000, 20_001]);
    logs.idle("rerun");

    // The same by copytruncate: the archive is found by content.
    logs.append("app.log", b"{\"missed\":true}\n");
    let before = logs.read("app.log");
    let id = logs.id("app.log");
    logs.copytruncate("app.log", "app-2.log");
    logs.append("app.log", b"{\"fresh\":1}\n");
    let report = logs.step(
        "missed bytes, then copytruncate",
        &[("app-2.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app-2.log"), 16);
    assert_eq!(logs.id("app-2.log"), id);
    assert_eq!(logs.segments("app-2.log"), [90_000, 16]);
    assert_eq!(logs.read("app-2.log"), before);
    logs.idle("rerun");
}

#[test]
fn two_rotations_between_syncs_by_rename() {
    let logs = Logs::flat("");
    logs.write("app.log", &lines(30_000, 40));
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.append("app.log", &lines(1_000, 41));
    logs.rename("app.log", "app-1.log");
    logs.write("app.log", &lines(45_000, 42));
    logs.rename("app.log", "app-2.log");
    logs.write("app.log", &lines(20_000, 43));
    let report = logs.step(
        "two rotations",
        &[
            ("app-1.log", "rotated"),
            ("app-2.log", "new"),
            ("app.log", "new"),
        ],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 1_000);
    assert_eq!(logs.id("app-1.log"), id);
    assert_eq!(logs.segments("app-1.log"), [30_000, 1_000]);
    logs.idle("rerun");
}

#[test]
fn two_rotations_between_syncs_by_copytruncate() {
    let logs = Logs::flat("");
    // Every generation starts with the same header block: only full content tells them apart.
    let header = lines(BLOCK + 100, 50);
    let first = concat(&[&header, &lines(30_000, 51)]);
    logs.write("app.log", &first);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.append("app.log", b"{\"missed\":1}\n");
    logs.copytruncate("app.log", "app-1.log");
    logs.append("app.log", &concat(&[&header, &lines(60_000, 52)]));
    logs.copytruncate("app.log", "app-2.log");
    logs.append("app.log", &concat(&[&header, &lines(50_000, 53)]));
    let report = logs.step(
        "two copytruncates",
        &[
            ("app-1.log", "rotated"),
            ("app-2.log", "new"),
            ("app.log", "new"),
        ],
    );
    assert_eq!(bytes_of(&report, "app-1.log"), 13);
    assert_eq!(logs.id("app-1.log"), id);
    assert_eq!(logs.segments("app-1.log"), [first.len() as u64, 13]);
    logs.idle("rerun");
}

#[test]
fn copytruncate_to_empty_then_growth() {
    let logs = Logs::flat("");
    logs.write("app.log", &lines(33_333, 60));
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    logs.copytruncate("app.log", "app-1.log");
    let report = logs.step(
        "copytruncate, active empty",
        &[("app-1.log", "rotated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app.log"), 0);
    assert_eq!(logs.id("app-1.log"), id);
    assert_eq!(logs.segments("app-1.log"), [33_333]);
    logs.idle("rerun");

    logs.append("app.log", &lines(12_345, 61));
    logs.step("active grows", &[("app.log", "appended")]);
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// 6. Numbered schemes

/// logrotate's default numbered scheme with `rotate 3` and `compress`: app.log.3 becomes
/// app.log.4.gz (outside the pattern), .2 -> .3, .1 -> .2, app.log -> .1, a new app.log.
fn rotate_numbered(logs: &Logs) {
    if logs.host("app.log.3").exists() {
        let bytes = logs.read("app.log.3");
        logs.write("app.log.4.gz", &concat(&[b"GZ", &bytes]));
        logs.remove("app.log.3");
    }
    for i in (1..=2).rev() {
        if logs.host(&format!("app.log.{i}")).exists() {
            logs.rename(&format!("app.log.{i}"), &format!("app.log.{}", i + 1));
        }
    }
    logs.rename("app.log", "app.log.1");
    logs.write("app.log", b"");
}

/// Fresh log bytes from the next seed, counted in `written`.
fn fresh(seed: &mut u64, written: &mut usize, len: usize) -> Vec<u8> {
    *seed += 1;
    *written += len;
    lines(len, *seed)
}

/// `(name, action)` pairs as `step` takes them.
fn pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect()
}

#[test]
fn numbered_logrotate_over_five_rotations() {
    let mut logs = Logs::new("", "app.log", Some("app.log.[0-9]"), "");
    let (mut seed, mut written) = (70u64, 0usize);
    logs.write("app.log", &fresh(&mut seed, &mut written, 20_000));
    logs.step("first", &[("app.log", "new")]);
    let mut generations = 1;
    let names = ["app.log", "app.log.1", "app.log.2", "app.log.3"];

    for k in 1..=5usize {
        let ctx = format!("rotation {k}");
        let grow = fresh(&mut seed, &mut written, 5_000 + k * 1_000);
        logs.append("app.log", &grow);
        logs.step(&format!("{ctx}: growth"), &[("app.log", "appended")]);
        // Written after that sync, before the rotation: must reach the archive's node.
        let missed = fresh(&mut seed, &mut written, 100 * k + 1);
        logs.append("app.log", &missed);

        let before: BTreeMap<&str, (i64, usize)> = names
            .iter()
            .filter(|n| logs.host(n).exists())
            .map(|n| (*n, (logs.id(n), logs.versions(n).len())))
            .collect();
        let dropped = logs.read_opt("app.log.3");
        rotate_numbered(&logs);
        logs.append("app.log", &fresh(&mut seed, &mut written, 3_000 + k));
        generations += 1;

        let missing = format!("app.log.3@{}", logs.last_txn() + 1);
        let mut expect = vec![("app.log", "new"), ("app.log.1", "rotated")];
        if k >= 2 {
            expect.push(("app.log.2", "renamed"));
        }
        if k >= 3 {
            expect.push(("app.log.3", "renamed"));
        }
        if let Some(bytes) = dropped {
            // Gone from the host (compressed to app.log.4.gz); its name is taken by .2.
            expect.push((missing.as_str(), "missing"));
            logs.kept.insert(missing.clone(), bytes);
        }
        let report = logs.step(&ctx, &expect);
        assert_eq!(bytes_of(&report, "app.log.1"), missed.len() as u64, "{ctx}");
        for (i, name) in names.iter().enumerate().take(3) {
            let Some(&(id, versions)) = before.get(name) else {
                continue;
            };
            let to = names[i + 1];
            assert_eq!(logs.id(to), id, "{ctx}: {name} -> {to} keeps its node");
            let grew = usize::from(i == 0);
            assert_eq!(logs.versions(to).len(), versions + grew, "{ctx}: {to}");
        }
        if let Some(&(id, versions)) = before.get("app.log.3") {
            assert_eq!(
                logs.id(&missing),
                id,
                "{ctx}: dropped archive keeps its node"
            );
            assert_eq!(logs.versions(&missing).len(), versions, "{ctx}");
        }
        logs.idle(&format!("{ctx}: rerun"));
        // Never stored twice: one node per generation, every byte once.
        let mirrored = logs.mirrored();
        assert_eq!(mirrored.len(), generations, "{ctx}: {mirrored:?}");
        let stored: u64 = mirrored.values().map(|e| e["size"].as_u64().unwrap()).sum();
        assert_eq!(stored, written as u64, "{ctx}: bytes stored");
    }

    // Two rotations between syncs: the synced active file is now app.log.2.
    let ctx = "two rotations between syncs";
    let active_id = logs.id("app.log");
    let first_id = logs.id("app.log.1");
    let missed = fresh(&mut seed, &mut written, 777);
    logs.append("app.log", &missed);
    let gone = [logs.read("app.log.3"), logs.read("app.log.2")];
    rotate_numbered(&logs);
    logs.append("app.log", &fresh(&mut seed, &mut written, 4_000));
    rotate_numbered(&logs);
    logs.append("app.log", &fresh(&mut seed, &mut written, 2_000));
    generations += 2;
    let txn = logs.last_txn() + 1;
    let (gone3, gone2) = (format!("app.log.3@{txn}"), format!("app.log.2@{txn}"));
    logs.kept.insert(gone3.clone(), gone[0].clone());
    logs.kept.insert(gone2.clone(), gone[1].clone());
    let report = logs.step(
        ctx,
        &[
            ("app.log", "new"),
            ("app.log.1", "new"),
            ("app.log.2", "rotated"),
            ("app.log.3", "renamed"),
            (gone3.as_str(), "missing"),
            (gone2.as_str(), "missing"),
        ],
    );
    assert_eq!(bytes_of(&report, "app.log.2"), 777);
    assert_eq!(logs.id("app.log.2"), active_id, "{ctx}");
    assert_eq!(logs.id("app.log.3"), first_id, "{ctx}");
    logs.idle("rerun after two rotations");
    let mirrored = logs.mirrored();
    assert_eq!(mirrored.len(), generations, "{mirrored:?}");
    let stored: u64 = mirrored.values().map(|e| e["size"].as_u64().unwrap()).sum();
    assert_eq!(stored, written as u64, "bytes stored");
}

// ---------------------------------------------------------------------------------------------
// 7. Truncation without an archive

#[test]
fn truncated_in_place_without_archive_keeps_old_node() {
    let mut logs = Logs::flat("");
    let old = lines(50_000, 80);
    logs.write("app.log", &old);
    logs.write("app-0.log", &lines(60_000, 79)); // an unrelated archive
    logs.step("first", &[("app.log", "new"), ("app-0.log", "new")]);
    let id = logs.id("app.log");

    logs.rewrite_in_place("app.log", &lines(20_000, 81));
    let kept = format!("app.log@{}", logs.last_txn() + 1);
    logs.kept.insert(kept.clone(), old.clone());
    let report = logs.step(
        "truncated and rewritten",
        &[(kept.as_str(), "truncated"), ("app.log", "new")],
    );
    assert_eq!(bytes_of(&report, "app.log"), 20_000);
    let stderr = logs.stderr.borrow().clone();
    assert!(
        stderr.contains(s(&logs.host("app.log"))) && stderr.contains(&kept),
        "a truncation warns, naming the file and where the old bytes are: {stderr}"
    );
    assert_eq!(logs.id(&kept), id, "the old bytes keep their node");
    assert_ne!(logs.id("app.log"), id);
    assert_eq!(logs.segments(&kept), [50_000]);

    // Future runs go on as usual.
    logs.append("app.log", &lines(3_000, 82));
    logs.step("growth after truncation", &[("app.log", "appended")]);
    logs.idle("rerun after truncation");
}

#[test]
fn replaced_by_larger_file_without_archive_keeps_old_node() {
    let mut logs = Logs::flat("");
    let old = lines(3 * BLOCK, 90);
    logs.write("app.log", &old);
    logs.step("first", &[("app.log", "new")]);
    let id = logs.id("app.log");

    // Deleted and written anew, larger than the tracked size (the freed inode may be reused).
    logs.remove("app.log");
    let new = lines(5 * BLOCK + 3, 91);
    logs.write("app.log", &new);
    let kept = format!("app.log@{}", logs.last_txn() + 1);
    logs.kept.insert(kept.clone(), old.clone());
    logs.step(
        "replaced by a larger file",
        &[(kept.as_str(), "truncated"), ("app.log", "new")],
    );
    assert_eq!(logs.id(&kept), id);
    assert_eq!(logs.segments("app.log"), [new.len() as u64]);
    logs.idle("rerun after replacement");
}

#[test]
fn truncation_with_on_truncate_fail_changes_nothing() {
    let mut logs = Logs::flat("on_truncate: fail\n");
    let old = lines(40_000, 100);
    logs.write("app.log", &old);
    logs.step("first", &[("app.log", "new")]);

    logs.rewrite_in_place("app.log", &lines(10_000, 101));
    logs.write("app-9.log", &lines(5_000, 102)); // would be new, but the run fails as a whole
    let before = logs.snapshot();
    for extra in [&["--dry-run"][..], &[]] {
        let out = logs.sync_output(extra);
        assert!(!out.status.success(), "sync {extra:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        support::assert_one_line_error(&stderr, &[s(&logs.host("app.log")), "on_truncate"]);
        assert_eq!(logs.snapshot(), before, "sync {extra:?} changed the pond");
    }
    assert_eq!(logs.cat(&Logs::pond("app.log")), old);
    assert!(logs.output(&["verify"]).status.success());

    // Switched to the default policy, the next run keeps the old bytes and goes on.
    let text = std::fs::read_to_string(&logs.config)
        .unwrap()
        .replace("on_truncate: fail", "on_truncate: keep");
    std::fs::write(&logs.config, text).unwrap();
    logs.ok(&[
        "mknod",
        "logfile",
        NODE,
        "--config-path",
        s(&logs.config),
        "--overwrite",
    ]);
    let kept = format!("app.log@{}", logs.last_txn() + 1);
    logs.kept.insert(kept.clone(), old);
    logs.step(
        "after switching to keep",
        &[
            (kept.as_str(), "truncated"),
            ("app.log", "new"),
            ("app-9.log", "new"),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Changed and missing archives

#[test]
fn changed_and_missing_archives_keep_the_original() {
    let mut logs = Logs::flat("");
    logs.write("app.log", &lines(10_000, 110));
    let originals: Vec<Vec<u8>> = (1..=3).map(|i| lines(20_000 * i, 110 + i as u64)).collect();
    for (i, bytes) in originals.iter().enumerate() {
        logs.write(&format!("app-{}.log", i + 1), bytes);
    }
    logs.step(
        "first",
        &[
            ("app.log", "new"),
            ("app-1.log", "new"),
            ("app-2.log", "new"),
            ("app-3.log", "new"),
        ],
    );
    let ids: Vec<i64> = (1..=3).map(|i| logs.id(&format!("app-{i}.log"))).collect();

    // Rewritten in place, same size: reported, not re-ingested, the run succeeds.
    let mut changed = originals[0].clone();
    changed[12_345] ^= 0x01;
    logs.rewrite_in_place("app-1.log", &changed);
    logs.bump_mtime("app-1.log");
    logs.diverged
        .insert(logs.host("app-1.log"), originals[0].clone());
    logs.step("archive rewritten", &[("app-1.log", "changed_archive")]);
    let stderr = logs.stderr.borrow().clone();
    assert!(
        stderr.contains(s(&logs.host("app-1.log"))),
        "a changed archive warns naming it: {stderr}"
    );

    // Shrunk: the same. (app-1.log is still changed and still reported.)
    OpenOptions::new()
        .write(true)
        .open(logs.host("app-2.log"))
        .unwrap()
        .set_len(7_000)
        .unwrap();
    logs.diverged
        .insert(logs.host("app-2.log"), originals[1].clone());
    logs.step(
        "archive shrunk",
        &[
            ("app-1.log", "changed_archive"),
            ("app-2.log", "changed_archive"),
        ],
    );

    // Deleted from the host: the pond keeps its copy.
    logs.remove("app-3.log");
    logs.kept.insert("app-3.log".into(), originals[2].clone());
    logs.remove("app-2.log");
    logs.diverged.remove(&logs.host("app-2.log"));
    logs.kept.insert("app-2.log".into(), originals[1].clone());
    logs.step(
        "archives deleted",
        &[
            ("app-1.log", "changed_archive"),
            ("app-2.log", "missing"),
            ("app-3.log", "missing"),
        ],
    );
    for (i, id) in ids.iter().enumerate() {
        let name = format!("app-{}.log", i + 1);
        assert_eq!(logs.id(&name), *id, "{name}");
        assert_eq!(logs.versions(&name).len(), 1, "{name} was re-ingested");
    }

    // Restored to its original bytes: mirrored again, nothing stored.
    logs.rewrite_in_place("app-1.log", &originals[0]);
    logs.bump_mtime("app-1.log");
    logs.diverged.clear();
    let report = logs.step("archive restored", &[]);
    assert_eq!(report["bytes_written"], 0);
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// The Hyperliquid node layout: hourly files in daily directories, old days pruned

#[test]
fn node_layout_over_three_days() {
    let mut logs = Logs::new("hourly", "*/*", None, "");
    let days = ["20250310", "20250311", "20250312"];
    // Host content, and the size each file had at the last sync.
    let mut content: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut synced: BTreeMap<String, usize> = BTreeMap::new();
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeMap<String, i64> = BTreeMap::new();
    let mut pruned: Vec<String> = Vec::new();
    let mut seed = 1_000u64;
    let mut syncs = 0;

    for (d, day) in days.iter().enumerate() {
        if d == 2 {
            // Day 1 is pruned on the host; the pond keeps it.
            std::fs::remove_dir_all(logs.host(days[0])).unwrap();
            for (name, bytes) in content.iter().filter(|(n, _)| n.starts_with(days[0])) {
                logs.kept.insert(name.clone(), bytes.clone());
                pruned.push(name.clone());
            }
            content.retain(|n, _| !n.starts_with(days[0]));
        }
        let mut previous: Option<String> = None;
        for hour in 0..24 {
            let name = format!("{day}/{hour}");
            seed += 1;
            let bytes = lines(1_500 + (seed as usize * 37) % 3_000, seed);
            logs.append(&name, &bytes);
            content.entry(name.clone()).or_default().extend(&bytes);
            // Late lines still land in the previous hour's file.
            if let Some(prev) = &previous {
                let late = lines(200 + hour * 3, seed ^ 0xff);
                logs.append(prev, &late);
                content.get_mut(prev).unwrap().extend(&late);
            }
            previous = Some(name);
            if hour % 6 != 5 {
                continue;
            }
            // A sync every six hours.
            let mut expect: Vec<(String, String)> = Vec::new();
            for (name, bytes) in &content {
                match synced.get(name) {
                    None => expect.push((name.clone(), "new".into())),
                    Some(&len) if len < bytes.len() => {
                        expect.push((name.clone(), "appended".into()))
                    }
                    Some(_) => {}
                }
            }
            for name in &pruned {
                if synced.remove(name).is_some() {
                    expect.push((name.clone(), "missing".into()));
                }
            }
            syncs += 1;
            logs.step(&format!("day {day} hour {hour}"), &pairs(&expect));
            for (name, action) in &expect {
                if action != "missing" {
                    synced.insert(name.clone(), content[name].len());
                    *versions.entry(name.clone()).or_default() += 1;
                }
            }
            for (name, entry) in logs.mirrored() {
                let id = entry["id"].as_i64().unwrap();
                assert_eq!(
                    *ids.entry(name.clone()).or_insert(id),
                    id,
                    "{name} changed id"
                );
            }
        }
    }
    assert_eq!(syncs, 12);
    logs.idle("rerun after three days");
    assert_eq!(logs.mirrored().len(), 72);
    for name in ["20250310/0", "20250310/23", "20250311/5", "20250312/23"] {
        assert_eq!(logs.versions(name).len(), versions[name], "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Idle reruns are O(1)

#[test]
fn idle_rerun_over_200_files_reads_nothing() {
    let logs = Logs::flat("");
    let mut expect = vec![("app.log".to_string(), "new".to_string())];
    logs.write("app.log", &lines(4_000, 120));
    for i in 0..200 {
        let name = format!("app-{i:03}.log");
        logs.write(&name, &lines(800 + i * 13, 121 + i as u64));
        expect.push((name, "new".into()));
    }
    logs.step("200 archives and the active file", &pairs(&expect));
    logs.idle("idle rerun over 201 files");
    logs.idle("second idle rerun");

    logs.append("app.log", &lines(5_000, 400));
    logs.write("app-200.log", &lines(2_000, 401));
    let report = logs.step(
        "one append, one new archive",
        &[("app.log", "appended"), ("app-200.log", "new")],
    );
    let read = report["bytes_read"].as_u64().unwrap();
    assert!(
        read <= 7_000 + 4 * BLOCK as u64,
        "a sync reads what changed, not all 202 files: {read}"
    );
    logs.idle("idle again");
}

// ---------------------------------------------------------------------------------------------
// 9. Unreadable files

/// Whether a mode-000 file can still be read here (root, or CAP_DAC_OVERRIDE).
fn permissions_do_not_stop_reads(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::read(&probe).is_ok();
    std::fs::remove_file(&probe).unwrap();
    readable
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn unreadable_files_are_reported_by_name_and_the_rest_is_mirrored() {
    let mut logs = Logs::flat("");
    if permissions_do_not_stop_reads(logs.tp.tmp.path()) {
        // Running as root: mode 000 would not stop `pond`. Run every `pond` command of this
        // test as an unprivileged user instead, so that the real EACCES path is exercised.
        chown_tree(logs.tp.tmp.path(), NOBODY);
        logs.run_as = Some(NOBODY);
        let probe = logs.cmd(&["log", "--json"]).output();
        match probe {
            Ok(out) if out.status.success() => {}
            failed => {
                support::skipped(
                    "unreadable_files_are_reported_by_name_and_the_rest_is_mirrored",
                    &format!(
                        "running as root and pond cannot run as uid {NOBODY} here (is the temp \
                         directory {} reachable by that user?): {}",
                        logs.tp.tmp.path().display(),
                        match failed {
                            Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                            Err(e) => e.to_string(),
                        }
                    ),
                );
                return;
            }
        }
    }
    logs.write("app.log", &lines(10_000, 130));
    logs.write("app-1.log", &lines(20_000, 131));
    logs.write("app-2.log", &lines(30_000, 132));
    set_mode(&logs.host("app-2.log"), 0o000);
    logs.skip.insert(logs.host("app-2.log"));

    let out = logs.sync_output(&[]);
    assert!(
        !out.status.success(),
        "an unreadable file makes the run fail"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(s(&logs.host("app-2.log"))),
        "the unreadable file is named: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        changed(&report),
        BTreeMap::from([
            ("app.log".to_string(), "new".to_string()),
            ("app-1.log".to_string(), "new".to_string()),
        ]),
        "{report}"
    );
    assert!(report["txn"].is_u64(), "the rest is committed: {report}");
    logs.check_mirror("after a run with an unreadable archive");

    // A tracked file that becomes unreadable while it grows: reported, left as it was.
    logs.append("app.log", &lines(1_000, 133));
    set_mode(&logs.host("app.log"), 0o000);
    logs.write("app-3.log", &lines(4_000, 134));
    let out = logs.sync_output(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(s(&logs.host("app.log"))), "{stderr}");
    assert!(stderr.contains(s(&logs.host("app-2.log"))), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        changed(&report),
        BTreeMap::from([("app-3.log".to_string(), "new".to_string())]),
        "{report}"
    );
    assert_eq!(logs.segments("app.log"), [10_000]);

    // Readable again: everything catches up.
    set_mode(&logs.host("app.log"), 0o644);
    set_mode(&logs.host("app-2.log"), 0o644);
    logs.skip.clear();
    logs.step(
        "readable again",
        &[("app.log", "appended"), ("app-2.log", "new")],
    );
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// 9. Files changing during a sync

#[test]
fn files_changing_during_syncs_never_tear() {
    let mut logs = Logs::flat("");
    logs.dry_run_first = false;
    logs.write("app.log", &lines(50_000, 140));
    logs.step("first", &[("app.log", "new")]);

    // Archive `i`'s bytes (archives are written under another name, then renamed into place).
    let archive = |i: u64| lines(3_000 + (i as usize * 911) % 20_000, 1_000 + i);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let base = logs.base.clone();
        std::thread::spawn(move || {
            let mut active = OpenOptions::new()
                .append(true)
                .open(base.join("app.log"))
                .unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                active.write_all(&lines(300, 2_000 + i)).unwrap();
                if i.is_multiple_of(5) {
                    let tmp = base.join(format!("tmp-{i}"));
                    std::fs::write(&tmp, archive(i)).unwrap();
                    std::fs::rename(&tmp, base.join(format!("app-{i:05}.log"))).unwrap();
                }
                if i.is_multiple_of(7) && i > 20 {
                    // Archives vanish too, some right after they appeared.
                    let _ = std::fs::remove_file(base.join(format!("app-{:05}.log", i - 5)));
                    let _ = std::fs::remove_file(base.join(format!("app-{:05}.log", i - 20)));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            i
        })
    };
    let mut last_len = 50_000;
    for round in 0..12 {
        let report = logs.sync_report(&[]);
        let host_now = logs.read("app.log");
        let stored = logs.cat(&Logs::pond("app.log"));
        assert!(
            stored.len() >= last_len && host_now.starts_with(&stored),
            "round {round}: the mirror of the growing file is not a prefix of it ({} bytes)",
            stored.len()
        );
        last_len = stored.len();
        for (name, entry) in logs.mirrored() {
            if let Some(i) = name
                .strip_prefix("app-")
                .and_then(|n| n.strip_suffix(".log"))
            {
                let expected = archive(i.parse().unwrap());
                assert_eq!(
                    entry["blake3"].as_str().unwrap(),
                    blake3::hash(&expected).to_hex().as_str(),
                    "round {round}: torn archive {name} ({report})"
                );
            }
        }
        let verify = logs.output(&["verify"]);
        assert!(verify.status.success(), "round {round}: verify");
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 20, "the writer ran ({writes} writes)");

    // Quiet again: one more sync mirrors everything exactly.
    logs.sync_report(&[]);
    for row in logs.status_rows() {
        if row["on_host"] == false {
            let name = rel(row["path"].as_str().unwrap());
            let i: u64 = name["app-".len()..name.len() - ".log".len()]
                .parse()
                .unwrap();
            logs.kept.insert(name, archive(i));
        }
    }
    logs.check_mirror("after the writer stopped");
    logs.dry_run_first = true;
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// SIGKILL during sync

/// A change to the host files.
type HostChange<'a> = &'a dyn Fn(&Logs);

#[test]
fn sync_killed_at_random_instants_then_rerun_mirrors_exactly() {
    let seed = std::env::var("LOGFILE_CRASH_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x10f1_1e5e_ed00_0001);
    eprintln!("logfile crash seed {seed:#x} (LOGFILE_CRASH_SEED={seed:#x} reproduces it)");
    let mut rng = SplitMix64(seed);
    // zstd:3 makes the stores slow enough for the kills to land before, during and after them.
    let mut logs = Logs::new_in(
        TestPond::with_compression("zstd:3"),
        "",
        "app.log",
        Some("app-*.log"),
        "",
    );
    logs.dry_run_first = false;

    // Phase 1: a 64 MiB new file. Phase 2: missed bytes, a rotation, a 24 MiB new file. Once a
    // round has committed, the next one gets 24 MiB more to append: every sync has work to do.
    let chunk = lines(24 << 20, 151);
    let phases: [(&str, HostChange); 2] = [
        ("64 MiB new file", &|l: &Logs| {
            l.write("app.log", &lines(64 << 20, 150))
        }),
        ("missed bytes, rotation, 24 MiB new file", &|l: &Logs| {
            l.append("app.log", &chunk[..3 << 20]);
            l.rename("app.log", "app-1.log");
            l.write("app.log", &chunk);
        }),
    ];
    let mut outcomes = BTreeMap::<&str, usize>::new();
    // How long a sync takes per MiB to store (beyond a fixed 50 ms), learnt from the syncs that
    // finish: the kill instants are drawn from 0..150% of the expected duration.
    let mut ms_per_mib = 8u64;
    for ((phase, mutate), first_mib) in phases.into_iter().zip([64, 27]) {
        mutate(&logs);
        let mut pending_mib = first_mib;
        for round in 0..5u64 {
            if pending_mib == 0 {
                logs.append("app.log", &chunk);
                pending_mib = 24;
            }
            let host = logs.host_files();
            let delay = rng.below((50 + ms_per_mib * pending_mib) * 3 / 2);
            let ctx = format!("seed {seed:#x}, {phase}, round {round}, kill after {delay} ms");
            let before: BTreeMap<String, Value> = logs.mirrored();
            let txns = logs.tp.txns().len();
            let run = support::kill_after(
                logs.cmd(&["run", NODE, "sync", "--json"]),
                Duration::from_millis(delay),
            );
            let finished = run.finished_after.is_some();
            if let Some(took) = run.finished_after {
                let ms = took.as_millis() as u64;
                ms_per_mib = (ms.saturating_sub(50) / pending_mib).max(1);
            }
            let status = run.status;
            let verify = logs.output(&["verify"]);
            assert!(
                verify.status.success(),
                "{ctx}: verify after the kill: {}",
                String::from_utf8_lossy(&verify.stdout)
            );
            // All or nothing: the previous commit, or the sync's.
            let after = logs.mirrored();
            let committed = logs.tp.txns().len();
            let outcome = if committed == txns {
                assert_eq!(after, before, "{ctx}: no commit, yet the mirror changed");
                assert!(
                    !finished || !status.success(),
                    "{ctx}: exited 0 without a commit"
                );
                "killed, nothing committed"
            } else {
                assert_eq!(committed, txns + 1, "{ctx}");
                let paths: Vec<&Path> = host.values().map(PathBuf::as_path).collect();
                let hashes = b3sum_many(&paths);
                for (name, path) in &host {
                    assert_eq!(
                        after[name]["blake3"].as_str(),
                        Some(hashes[path].as_str()),
                        "{ctx}: committed but {name} is not the host file"
                    );
                }
                if finished {
                    "finished"
                } else {
                    "killed after the commit"
                }
            };
            if outcome != "killed, nothing committed" {
                pending_mib = 0;
            }
            eprintln!("{ctx}: {outcome} ({status})");
            *outcomes.entry(outcome).or_default() += 1;
        }
        logs.sync_report(&[]);
        logs.check_mirror(&format!("{phase}: rerun after the kills"));
    }
    eprintln!("crash outcomes: {outcomes:?}");
    logs.dry_run_first = true;
    logs.idle("idle after the kills");
}

// ---------------------------------------------------------------------------------------------
// Inode reuse

/// Creates empty files `spare-N` in `dir` until one gets inode `ino` (ext4 hands a freed inode
/// out again soon); the others are removed. `None` when the filesystem does not reuse it.
fn file_with_inode(dir: &Path, ino: u64) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut spares = Vec::new();
    let mut found = None;
    for i in 0..256 {
        let path = dir.join(format!("spare-{i}"));
        std::fs::write(&path, b"").unwrap();
        if std::fs::metadata(&path).unwrap().ino() == ino {
            found = Some(path);
            break;
        }
        spares.push(path);
    }
    for path in spares {
        std::fs::remove_file(path).unwrap();
    }
    found
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// An archive disappears (reported `missing` once); meanwhile a new archive is being written under
/// a temporary name and gets the freed inode (ext4 hands freed inodes out again); then it is
/// renamed into the old name. The pond knows the old file is gone, so the same (path, inode) must
/// not make the new archive look like the old one, changed: it is a new file.
#[test]
fn new_archive_reusing_a_vanished_archives_name_and_inode_is_stored() {
    let mut logs = Logs::new("", "app.log", Some("app.log.[0-9]"), "");
    let old = lines(30_000, 160);
    logs.write("app.log", &lines(10_000, 161));
    logs.write("app.log.1", &old);
    logs.step("first", &[("app.log", "new"), ("app.log.1", "new")]);

    let ino = inode(&logs.host("app.log.1"));
    logs.remove("app.log.1");
    let Some(incoming) = file_with_inode(&logs.base, ino) else {
        support::skipped(
            "new_archive_reusing_a_vanished_archives_name_and_inode_is_stored",
            &format!("this file system did not hand inode {ino} out again"),
        );
        return;
    };
    std::fs::write(&incoming, lines(45_000, 162)).unwrap();
    logs.kept.insert("app.log.1".into(), old.clone());
    logs.step("archive deleted", &[("app.log.1", "missing")]);
    logs.idle("rerun");

    std::fs::rename(&incoming, logs.host("app.log.1")).unwrap();
    assert_eq!(inode(&logs.host("app.log.1")), ino);
    // The vanished archive's node steps aside (`NAME@TXN`) for the new file of that name.
    let aside = format!("app.log.1@{}", logs.last_txn() + 1);
    logs.kept.remove("app.log.1");
    logs.kept.insert(aside.clone(), old);
    logs.step(
        "a new archive with the old name and inode",
        &[("app.log.1", "new")],
    );
    logs.idle("rerun");
}

// ---------------------------------------------------------------------------------------------
// 9. Files that shrink, grow, vanish or are replaced between listing and reading

#[test]
fn files_changing_between_listing_and_reading() {
    let mut logs = Logs::flat("");
    logs.dry_run_first = false;
    // New files are stored in path order: the big one first, the others while it is stored.
    logs.write("app-0-big.log", &lines(48 << 20, 170));
    let original: BTreeMap<&str, Vec<u8>> = ["shrink", "grow", "vanish", "replaced"]
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, lines(100_000 + i, 171 + i as u64)))
        .collect();
    for (name, bytes) in &original {
        logs.write(&format!("app-z-{name}.log"), bytes);
    }
    let data = logs.tp.pond.join("data");
    let mut child = logs
        .cmd(&["run", NODE, "sync", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first data file exists the host files were listed and the big one is being
    // stored: change the others now.
    let started = std::time::Instant::now();
    while std::fs::read_dir(&data).map_or(0, |d| d.count()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sync never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    OpenOptions::new()
        .write(true)
        .open(logs.host("app-z-shrink.log"))
        .unwrap()
        .set_len(10)
        .unwrap();
    logs.append("app-z-grow.log", &lines(50_000, 180));
    logs.remove("app-z-vanish.log");
    logs.remove("app-z-replaced.log");
    logs.write("app-z-replaced.log", &lines(70_000, 181));
    let in_time = child.try_wait().unwrap().is_none();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the run must not fail: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        in_time,
        "the sync ended before the files were changed; the test needs a slower store"
    );
    assert_eq!(
        changed(&report),
        BTreeMap::from([
            ("app-0-big.log".to_string(), "new".to_string()),
            ("app-z-grow.log".to_string(), "new".to_string()),
        ]),
        "only what could be read as listed is stored: {report}"
    );
    assert_eq!(bytes_of(&report, "app-z-grow.log"), 100_001);
    let grow = logs.cat(&Logs::pond("app-z-grow.log"));
    assert!(
        grow == original["grow"],
        "the grown file is stored as listed"
    );
    assert!(logs.output(&["verify"]).status.success());
    for name in ["shrink", "vanish", "replaced"] {
        assert!(
            !logs.mirrored().contains_key(&format!("app-z-{name}.log")),
            "app-z-{name}.log: nothing torn is stored"
        );
    }

    // The next run catches up.
    let report = logs.step(
        "next run",
        &[
            ("app-z-shrink.log", "new"),
            ("app-z-grow.log", "appended"),
            ("app-z-replaced.log", "new"),
        ],
    );
    assert_eq!(bytes_of(&report, "app-z-shrink.log"), 10);
    assert_eq!(bytes_of(&report, "app-z-grow.log"), 50_000);
    logs.dry_run_first = true;
    logs.idle("rerun");
}

/// A first sync of thousands of new hour files (a back-fill) under a hard limit of 128 open
/// files: host files and data files are open only while they are read or written, so the
/// descriptors a run needs do not grow with the number of files.
#[test]
fn backfill_of_thousands_of_files_runs_under_a_small_descriptor_limit() {
    let pond = TestPond::new();
    let mut expected = Vec::new();
    for day in 0..100 {
        for hour in 0..24 {
            let name = format!("hourly/2025{:02}{:02}/{hour}", day / 28 + 1, day % 28 + 1);
            let bytes = format!("{{\"day\":{day},\"hour\":{hour}}}\n");
            pond.host_file(&name, bytes.as_bytes());
            expected.push(name);
        }
    }
    let config = pond.host_file(
        "cfg/many.yaml",
        format!(
            "name: many\nactive_pattern: \"{}/hourly/*/*\"\npond_path: logs/many\n",
            pond.host.display()
        )
        .as_bytes(),
    );
    pond.ok(&[
        "mknod",
        "logfile",
        "/etc/many",
        "--config-path",
        config.to_str().unwrap(),
    ]);
    // Soft and hard: the process cannot raise it.
    let script = format!(
        "ulimit -n 128 && exec {} --pond {} run /etc/many sync --json",
        support::pond_bin(),
        pond.pond.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&support::succeeded(&["sync"], out)).unwrap();
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), expected.len());
    assert!(files.iter().all(|f| f["action"] == "new"), "{report}");
    for name in ["hourly/20250101/0", "hourly/20250416/23"] {
        let pond_path = format!("/logs/many/{}", name.trim_start_matches("hourly/"));
        assert_eq!(
            pond.cat(&pond_path),
            std::fs::read(pond.host.join(name)).unwrap()
        );
    }
}

// Regression: a pattern that matched nothing, or whose base directory did not exist, synced
// "0 changed" with exit 0 and no word even at POND_LOG=info. Now: a warning naming the
// pattern; for a fresh node waiting for its directory, an INFO line; `pond status` shows the
// difference as the node's note (and still exits 0).
#[test]
fn patterns_that_match_nothing_are_said_and_shown_in_status() {
    let tp = TestPond::new();
    std::fs::create_dir_all(tp.host.join("empty")).unwrap();
    for (node, pattern) in [
        ("/etc/nothing", format!("{}/empty/*.log", tp.host.display())),
        (
            "/etc/waiting",
            format!("{}/not-yet/*.log", tp.host.display()),
        ),
    ] {
        let config = tp.host_file(
            &format!("cfg{}.yaml", node.replace('/', "-")),
            format!("name: n\nactive_pattern: \"{pattern}\"\npond_path: logs{node}\n").as_bytes(),
        );
        tp.ok(&[
            "mknod",
            "logfile",
            node,
            "--config-path",
            config.to_str().unwrap(),
        ]);
    }
    let out = tp
        .cmd(&["run", "/etc/nothing", "sync"])
        .env("POND_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARN")
            && stderr.contains("no file matches")
            && stderr.contains("empty/*.log"),
        "{stderr}"
    );
    let out = tp
        .cmd(&["run", "/etc/waiting", "sync"])
        .env("POND_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INFO") && stderr.contains("not-yet does not exist yet: waiting for it"),
        "{stderr}"
    );
    assert!(!stderr.contains("WARN"), "{stderr}");
    let status = tp.output(&["status", "--json"]);
    assert!(
        status.status.success(),
        "notes are not problems: {status:?}"
    );
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    let note = |node: &str| {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["path"] == node)
            .unwrap()["note"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(note("/etc/nothing").contains("no file matches"), "{report}");
    assert!(
        note("/etc/waiting").contains("does not exist yet"),
        "{report}"
    );
    let text = tp.ok(&["status"]);
    assert!(text.contains("note: no file matches"), "{text}");
}
