//! Test harness: a temp pond and a temp host directory, and the real `pond` binary.
//!
//! [`TestPond`] runs `pond` (as another user, for permission tests), installs factory nodes from
//! config text, and reads back what the pond holds; the free functions make and compare host
//! bytes (`b3sum`), and [`kill_after`] stops a writer at an arbitrary instant. [`logs`] is the
//! `logfile` scenario harness on top of it; [`mongo`] a local MongoDB-protocol server and a
//! `logfile` -> `mongo` pipeline.
// Each `tests/*.rs` is its own crate that includes all of `support`; most use only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod logs;
pub mod mongo;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The `pond` binary built for these tests.
pub fn pond_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pond")
}

/// A temp dir holding a pond (`pond/`) and host files (`host/`).
pub struct TestPond {
    pub tmp: tempfile::TempDir,
    pub pond: PathBuf,
    pub host: PathBuf,
    /// Run every `pond` command as this uid and gid (permission tests, which run as root).
    pub run_as: Option<u32>,
}

impl TestPond {
    /// A new pond with the default compression.
    pub fn new() -> Self {
        Self::with_init_args(&[])
    }

    /// A new pond with `--compression VALUE`.
    pub fn with_compression(value: &str) -> Self {
        Self::with_init_args(&["--compression", value])
    }

    /// A new pond made by `pond init EXTRA...`.
    pub fn with_init_args(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let pond = tmp.path().join("pond");
        let host = tmp.path().join("host");
        std::fs::create_dir_all(&host).unwrap();
        let this = Self {
            tmp,
            pond,
            host,
            run_as: None,
        };
        let mut args = vec!["init"];
        args.extend_from_slice(extra);
        this.ok(&args);
        this
    }

    /// `pond --pond DIR ARGS...`, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = match self.run_as {
            None => Command::new(pond_bin()),
            Some(uid) => {
                // The build's own binary may sit in a private directory (a clone under a 0700
                // home): run a copy that the other user can execute.
                let mut cmd = Command::new(pond_bin_for_others());
                cmd.uid(uid).gid(uid);
                cmd
            }
        };
        cmd.arg("--pond").arg(&self.pond).args(args);
        cmd.env_remove("POND").env("POND_LOG", "warn");
        cmd
    }

    /// Runs and returns the output, whatever the exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.output(args))
    }

    /// Runs, asserts failure, returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.output(args);
        assert!(
            !out.status.success(),
            "pond {args:?} should fail but printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// Runs with `--json`, asserts success, parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        serde_json::from_str(&self.ok(&with_json)).unwrap()
    }

    /// Raw stdout bytes of `pond cat PATH`.
    pub fn cat(&self, path: &str) -> Vec<u8> {
        let out = self.output(&["cat", path]);
        assert!(
            out.status.success(),
            "cat {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Asserts that `pond cat PATH` gives exactly `expected`.
    #[track_caller]
    pub fn assert_cat_eq(&self, path: &str, expected: &[u8], context: &str) {
        let stored = self.cat(path);
        assert!(
            stored == expected,
            "{context}: pond cat {path} ({} bytes) differs from the expected {} bytes{}",
            stored.len(),
            expected.len(),
            first_difference(&stored, expected)
        );
    }

    /// Writes host file `host/NAME` (and its directories) and returns its path.
    pub fn host_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.host.join(name);
        write_file(&path, bytes);
        path
    }

    /// Appends to host file `host/NAME`, creating it (and its directories) when missing.
    pub fn append_host(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.host.join(name);
        append_file(&path, bytes);
        path
    }

    /// Writes `config` as the config file of node `node` (beside the pond, not under `host/`,
    /// where a pattern could match it) and returns its path.
    pub fn config_file(&self, node: &str, config: &str) -> PathBuf {
        let name = format!("{}.yaml", node.trim_start_matches('/').replace('/', "-"));
        let path = self.tmp.path().join("cfg").join(name);
        write_file(&path, config.as_bytes());
        path
    }

    /// `pond mknod FACTORY NODE --config-path FILE`, FILE holding `config`; returns FILE.
    pub fn install(&self, factory: &str, node: &str, config: &str) -> PathBuf {
        self.mknod(factory, node, config, &[])
    }

    /// [`TestPond::install`] with `--overwrite`: installs or replaces node `node`.
    pub fn reinstall(&self, factory: &str, node: &str, config: &str) -> PathBuf {
        self.mknod(factory, node, config, &["--overwrite"])
    }

    fn mknod(&self, factory: &str, node: &str, config: &str, extra: &[&str]) -> PathBuf {
        let file = self.config_file(node, config);
        let mut args = vec![
            "mknod",
            factory,
            node,
            "--config-path",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
        file
    }
}

/// Writes `path` (and its directories).
pub fn write_file(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// Appends to `path`, creating it (and its directories) when missing.
pub fn append_file(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

/// Where two byte strings first differ, for an assertion message.
pub fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(" (first difference at byte {i})"),
        None => " (one is a prefix of the other)".to_string(),
    }
}

/// Asserts that `pond ARGS` succeeded and returns its stdout.
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "pond {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Deterministic pseudo-random JSON-ish lines, `len` bytes.
pub fn log_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut line = 0u64;
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(
            format!(
                "{{\"seq\":{line},\"coin\":\"C{}\",\"px\":\"{}.{}\",\"sz\":\"{}\"}}\n",
                state >> 60,
                (state >> 32) % 100_000,
                (state >> 8) % 10_000,
                state % 997
            )
            .as_bytes(),
        );
        line += 1;
    }
    out.truncate(len);
    out
}

/// What the `b3sum` tool prints for `path` (the hex only). Tests that call this need `b3sum` on
/// PATH; `make test` installs it.
pub fn b3sum(path: &Path) -> String {
    let out = Command::new("b3sum")
        .arg("--no-names")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("b3sum is needed for this test (make test installs it): {e}"));
    assert!(
        out.status.success(),
        "b3sum {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// [`b3sum`] of many files, in one `b3sum` process per 500 files.
pub fn b3sum_many(paths: &[&Path]) -> BTreeMap<PathBuf, String> {
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
            assert_eq!(Path::new(name), *path);
            found.insert(path.to_path_buf(), hex.to_string());
        }
    }
    found
}

impl TestPond {
    /// The pond opened through the library, for what the CLI cannot do (several versions, an open
    /// write transaction).
    pub fn library(&self) -> pond_store::Pond {
        pond_store::Pond::open(&self.pond).unwrap()
    }

    /// Node id of the pond file at `path` (from `pond list --json`).
    pub fn node_id(&self, path: &str) -> i64 {
        let listed = self.json(&["list", path]);
        let entries = listed["entries"].as_array().unwrap();
        assert_eq!(
            entries.len(),
            1,
            "{path} should list exactly itself: {listed}"
        );
        entries[0]["id"].as_i64().unwrap()
    }

    /// `POND/data/<id>.0.dat`, the first-generation data file of node `id`.
    pub fn data_file(&self, id: i64) -> PathBuf {
        self.pond.join("data").join(format!("{id}.0.dat"))
    }

    /// `POND/data/<id>.obao`, the stable outboard of node `id`.
    pub fn outboard_file(&self, id: i64) -> PathBuf {
        self.pond.join("data").join(format!("{id}.obao"))
    }

    /// Asserts that `pond verify` exits 0.
    #[track_caller]
    pub fn assert_verify_clean(&self, context: &str) {
        let verify = self.output(&["verify"]);
        assert!(
            verify.status.success(),
            "{context}: verify failed: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }

    /// Transaction numbers in `pond log`, newest first.
    pub fn txns(&self) -> Vec<u64> {
        self.json(&["log"])["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["txn"].as_u64().unwrap())
            .collect()
    }
}

impl TestPond {
    /// Appends each of `pieces` as one version of the pond file `file` (created when missing),
    /// all in one transaction, through the library (the CLI has no append); returns the version
    /// numbers.
    pub fn append_versions(&self, file: &str, pieces: &[&[u8]]) -> Vec<u64> {
        let pond = self.library();
        let mut txn = pond
            .begin(vec!["test-append".into()], Duration::from_secs(10))
            .unwrap();
        let node = match txn.lookup(&pond_path(file)).unwrap() {
            Some(node) => node,
            None => txn.create_file(&pond_path(file)).unwrap(),
        };
        let versions = pieces
            .iter()
            .map(|piece| txn.append(&node, &mut &piece[..], None).unwrap().version)
            .collect();
        txn.commit("test append").unwrap();
        versions
    }
}

/// A pond path from its text.
pub fn pond_path(text: &str) -> pond_store::PondPath {
    pond_store::PondPath::parse(text).unwrap()
}

/// The seed of a test's random choices: the hex value of the environment variable `var` (with or
/// without `0x`) when set, else `default`. Printed on stderr, with how to reproduce the run.
pub fn seed(var: &str, default: u64) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(default);
    #[allow(clippy::print_stderr)]
    {
        eprintln!("seed {seed:#x} ({var}={seed:#x} reproduces this run)");
    }
    seed
}

/// Asserts that `stderr` is exactly one `error: ...` line containing every one of `needles`, with
/// no panic message or backtrace.
#[track_caller]
pub fn assert_one_line_error(stderr: &str, needles: &[&str]) {
    assert!(!stderr.contains("panicked"), "panic on stderr: {stderr}");
    assert!(
        !stderr.contains("backtrace"),
        "backtrace on stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(
        lines[0].starts_with("error: "),
        "not an `error:` line: {stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr should name {needle:?}: {stderr}"
        );
    }
}

/// Deterministic incompressible bytes (splitmix64), `len` bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A small deterministic PRNG (splitmix64): the seed reproduces a failing run.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// The sorted keys of a JSON object.
pub fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// How a run that [`kill_after`] watched ended.
pub struct Killed {
    /// When it ended by itself before the kill: how long it ran.
    pub finished_after: Option<Duration>,
    pub status: std::process::ExitStatus,
}

/// Spawns `cmd` (output discarded) and sends it SIGKILL `after` its start, unless it ends
/// first: the crash tests' way of stopping a writer at an arbitrary instant.
pub fn kill_after(mut cmd: Command, after: Duration) -> Killed {
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    kill_child_after(child, after)
}

/// Sends `child` SIGKILL `after` now, unless it ends first; waits for it either way.
pub fn kill_child_after(mut child: std::process::Child, after: Duration) -> Killed {
    let started = std::time::Instant::now();
    let mut finished_after = None;
    while started.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            finished_after = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // The process may have ended just now: one of the outcomes a crash test allows.
    let _ = child.kill();
    Killed {
        finished_after,
        status: child.wait().unwrap(),
    }
}

/// Records that a test cannot run here, visibly: a line on stderr now, and a line in the file
/// `POND_TEST_SKIPS` names, which `make test` prints in its summary. A skipped test is not a
/// pass: the summary says which and why.
pub fn skipped(test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{line}");
    }
    if let Ok(path) = std::env::var("POND_TEST_SKIPS") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }
}

/// A small tmpfs mounted at a new temporary directory, unmounted when dropped; `None` (with
/// the reason) where this process may not mount (not root, or no mount namespace rights).
pub struct SmallDisk {
    pub dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }

    /// Fills the file system up: what is left for a new block is 0.
    pub fn fill(&self) {
        let mut file = std::fs::File::create(self.dir.path().join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        use std::io::Write;
        while file.write_all(&block).is_ok() {}
        let mut small = vec![0u8; 512];
        while !small.is_empty() {
            if file.write_all(&small).is_err() {
                small.truncate(small.len() / 2);
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A copy of the `pond` binary in a directory anyone may enter, for tests that run it as
/// another user: the build's own may sit under a private (0700) directory.
pub fn pond_bin_for_others() -> &'static Path {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("pond-bin-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("pond");
        std::fs::copy(pond_bin(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    })
}
