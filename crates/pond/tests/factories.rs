//! The factory mechanism with test-only factories, run in-process through `pond::main_with`:
//! list-factories, mknod validation and stored text, `${env:...}` expansion at run time,
//! commit and rollback of runs, help and usage errors, and downstream chains.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use pond_factory::{Problem, Registry, RunOutcome, RunResult, Task, TypedFactory, WriteCtx};
use pond_store::{Pond, PondPath};
use serde::Deserialize;
use serde_json::Value;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use support::{assert_one_line_error, keys};

/// A variable no test environment sets.
const UNSET_VAR: &str = "POND_FACTORY_TEST_CERTAINLY_UNSET_7F3A";

// ---------------------------------------------------------------------------------------------
// Test factories

/// Config of the `append` test factory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendConfig {
    /// Pond file the text is appended to (created when missing).
    target: String,
    /// Text appended by each `write`.
    text: String,
    /// Fail after appending, so that rollback can be observed.
    #[serde(default)]
    fail: bool,
    /// A non-fatal problem reported after the append commits.
    #[serde(default)]
    warning: Option<String>,
    /// Factory nodes run after a successful `write`.
    #[serde(default)]
    downstream: Vec<String>,
}

/// Commands of the `append` test factory.
#[derive(Debug, clap::Subcommand)]
enum AppendCommand {
    /// Append the configured text to the target file.
    Write {
        /// Report as JSON.
        #[arg(long)]
        json: bool,
        /// Append, then roll back instead of committing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the expanded config and the target's size (read-only).
    Show,
}

struct Append;

/// The `append` factory's validated config.
struct AppendSettings {
    target: PondPath,
    config: AppendConfig,
}

impl TypedFactory for Append {
    type Config = AppendConfig;
    type Settings = AppendSettings;
    type Command = AppendCommand;
    const NAME: &'static str = "append";
    const DESCRIPTION: &'static str = "test factory: appends text to a pond file";

    fn settings(
        config: AppendConfig,
        source_name: &str,
    ) -> Result<AppendSettings, pond_factory::ConfigError> {
        let target =
            PondPath::parse(&config.target).map_err(|e| pond_factory::ConfigError::Invalid {
                source_name: source_name.to_string(),
                field: "target".to_string(),
                reason: e.to_string(),
            })?;
        Ok(AppendSettings { target, config })
    }

    fn downstream(settings: &AppendSettings) -> Vec<String> {
        settings.config.downstream.clone()
    }

    fn as_downstream(json: bool, dry_run: bool) -> Option<AppendCommand> {
        Some(AppendCommand::Write { json, dry_run })
    }

    fn task(command: AppendCommand) -> Task<AppendSettings> {
        match command {
            AppendCommand::Write { json, dry_run } => Task::write("write", move |settings, ctx| {
                write(settings, ctx, json, dry_run)
            })
            .json(json)
            .dry_run(dry_run),
            AppendCommand::Show => Task::read("show", |settings: &AppendSettings, ctx| {
                let target = &settings.target;
                let len = match ctx.pond.lookup(target)? {
                    Some(node) => ctx.pond.file_len(node.id)?,
                    None => 0,
                };
                writeln!(
                    ctx.out,
                    "target={target} text={} len={len}",
                    settings.config.text
                )?;
                Ok(RunOutcome::default())
            }),
        }
    }
}

/// `append write`: appends the text, fails or warns as configured.
fn write(settings: &AppendSettings, ctx: WriteCtx<'_>, json: bool, dry_run: bool) -> RunResult {
    let (target, config) = (&settings.target, &settings.config);
    let txn = ctx.pond;
    let node = match txn.lookup(target)? {
        Some(node) => node,
        None => txn.create_file(target)?,
    };
    let version = txn.append(&node, &mut config.text.as_bytes(), None)?;
    if config.fail {
        return Err(format!("asked to fail after appending to {target}").into());
    }
    let report = json.then(|| {
        serde_json::json!({
            "node": ctx.node.path.to_string(),
            "target": target.to_string(),
            "version": version.version,
            "bytes": version.total_len,
        })
    });
    if !json {
        writeln!(
            ctx.out,
            "appended {} bytes to {target}",
            version.segment_len
        )?;
    }
    Ok(RunOutcome {
        summary: format!("append to {target} by {}", ctx.node.path),
        discard: dry_run,
        errors: config
            .warning
            .iter()
            .map(|w| Problem::new(target, w.clone()))
            .collect(),
        report,
        ..RunOutcome::default()
    })
}

/// Config of the `echo` test factory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoConfig {
    /// What `say` prints.
    message: String,
}

/// Commands of the `echo` test factory.
#[derive(Debug, clap::Subcommand)]
enum EchoCommand {
    /// Print the message.
    Say,
}

struct Echo;

impl TypedFactory for Echo {
    type Config = EchoConfig;
    type Settings = EchoConfig;
    type Command = EchoCommand;
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "test factory: prints a message, changes nothing";

    fn settings(config: EchoConfig, _: &str) -> Result<EchoConfig, pond_factory::ConfigError> {
        Ok(config)
    }

    fn task(_: EchoCommand) -> Task<EchoConfig> {
        Task::read("say", |config: &EchoConfig, ctx| {
            writeln!(ctx.out, "{}", config.message)?;
            Ok(RunOutcome::default())
        })
    }
}

static APPEND: Append = Append;
static ECHO: Echo = Echo;

fn registry() -> Registry {
    Registry::new(vec![&APPEND, &ECHO])
}

// ---------------------------------------------------------------------------------------------
// Harness

/// What one in-process `pond` invocation produced.
struct Run {
    code: ExitCode,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", self.out))
    }
}

/// A temp pond driven through `pond::main_with` with the test registry.
struct Harness {
    tmp: tempfile::TempDir,
    pond: PathBuf,
}

impl Harness {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let pond = tmp.path().join("pond");
        let this = Self { tmp, pond };
        this.ok(&["init"]);
        this
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut argv: Vec<OsString> =
            vec!["pond".into(), "--pond".into(), self.pond.clone().into()];
        argv.extend(args.iter().map(OsString::from));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = pond::main_with(&registry(), argv, &mut out, &mut err);
        Run {
            code,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code,
            ExitCode::SUCCESS,
            "pond {args:?} failed: {}",
            run.err
        );
        run.out
    }

    fn fails(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_ne!(
            run.code,
            ExitCode::SUCCESS,
            "pond {args:?} should fail: {}",
            run.out
        );
        run
    }

    /// Writes a config file and returns its path.
    fn config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `pond mknod FACTORY PATH --config-path <file holding TEXT>`.
    fn mknod(&self, factory: &str, path: &str, text: &str) -> Run {
        let file = self.config(&format!("{}.yaml", path.replace('/', "_")), text);
        self.run(&[
            "mknod",
            factory,
            path,
            "--config-path",
            file.to_str().unwrap(),
        ])
    }

    fn mknod_ok(&self, factory: &str, path: &str, text: &str) {
        let run = self.mknod(factory, path, text);
        assert_eq!(run.code, ExitCode::SUCCESS, "mknod {path}: {}", run.err);
    }

    fn library(&self) -> Pond {
        Pond::open(&self.pond).unwrap()
    }

    /// The stored factory and config text of the node at `path`.
    fn stored(&self, path: &str) -> pond_store::FactoryNode {
        let snapshot = self.library().snapshot().unwrap();
        let node = snapshot.resolve(&PondPath::parse(path).unwrap()).unwrap();
        snapshot.factory_node(&node).unwrap()
    }

    /// Stores a factory node through the library, skipping `mknod`'s validation.
    fn mknod_unchecked(&self, factory: &str, path: &str, text: &str) {
        let pond = self.library();
        let mut txn = pond
            .begin(vec!["test".into()], Duration::from_secs(5))
            .unwrap();
        txn.mknod(&PondPath::parse(path).unwrap(), factory, text, false)
            .unwrap();
        txn.commit("test mknod").unwrap();
    }

    /// Content of a pond file, or `None` when it does not exist.
    fn content(&self, path: &str) -> Option<String> {
        let run = self.run(&["cat", path]);
        (run.code == ExitCode::SUCCESS).then_some(run.out)
    }

    /// `pond log --json` transactions, newest first.
    fn log(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok(&["log", "--json"])).unwrap()["transactions"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn append_config(target: &str, text: &str, extra: &str) -> String {
    // A YAML double-quoted string: newlines as `\n` escapes.
    let text = text.replace('\n', "\\n");
    format!("target: {target}\ntext: \"{text}\"\n{extra}")
}

/// Asserts a one-line error on stderr naming every needle.
#[track_caller]
fn assert_err_names(run: &Run, needles: &[&str]) {
    assert_one_line_error(&run.err, needles);
}

// ---------------------------------------------------------------------------------------------
// list-factories, mknod

// list-factories shows every registered factory, in text and JSON, without a pond.
#[test]
fn list_factories_text_and_json() {
    let mut out = Vec::new();
    let code = pond::main_with(
        &registry(),
        ["pond", "list-factories"].map(OsString::from),
        &mut out,
        &mut Vec::new(),
    );
    assert_eq!(code, ExitCode::SUCCESS);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("append ") && lines[0].contains(Append::DESCRIPTION));
    assert!(lines[1].starts_with("echo ") && lines[1].contains(Echo::DESCRIPTION));

    let h = Harness::new();
    let doc: Value = serde_json::from_str(&h.ok(&["list-factories", "--json"])).unwrap();
    assert_eq!(keys(&doc), ["factories"]);
    assert_eq!(
        doc["factories"],
        serde_json::json!([
            {"name": "append", "description": Append::DESCRIPTION},
            {"name": "echo", "description": Echo::DESCRIPTION},
        ])
    );
}

// mknod refuses an unknown key (naming it and its line), an unknown factory (listing the known
// ones), a missing config file (naming it) and a check failure; nothing is stored.
#[test]
fn mknod_validates_config_factory_and_file() {
    let h = Harness::new();
    let run = h.mknod("append", "/n", "target: /t\ntext: x\ntxet: y\n");
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &["txet", "line 3"]);

    let run = h.mknod("append", "/n", "target: /t\n");
    assert_err_names(&run, &["text"]);

    let run = h.mknod("append", "/n", "target: /a/../b\ntext: x\n");
    assert_err_names(&run, &["target", "`..`"]);

    let run = h.mknod("nosuch", "/n", "message: hi\n");
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &["nosuch", "append, echo"]);

    let missing = h.tmp.path().join("missing.yaml");
    let run = h.run(&[
        "mknod",
        "echo",
        "/n",
        "--config-path",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &[missing.to_str().unwrap()]);

    assert!(h.log().is_empty());
    assert_eq!(h.ok(&["list"]), "");

    // Missing parents are created; a factory node is no parent.
    h.mknod_ok("echo", "/etc/deep/n", "message: hi\n");
    assert_eq!(h.ok(&["list", "/**"]), "/etc\n/etc/deep\n/etc/deep/n\n");
    let run = h.mknod("echo", "/etc/deep/n/m", "message: hi\n");
    assert_err_names(&run, &["/etc/deep/n", "not a directory"]);
    assert_eq!(h.log().len(), 1);
}

// mknod stores the text as written (placeholders unexpanded); --overwrite replaces it, and
// without it an existing path is refused.
#[test]
fn mknod_stores_raw_text_and_overwrite_replaces() {
    let h = Harness::new();
    let text = "# home dir, expanded only when run\ntarget: /out.log\ntext: \"${env:HOME}\"\n";
    let made: Value = {
        let file = h.config("a.yaml", text);
        serde_json::from_str(&h.ok(&[
            "mknod",
            "append",
            "/a",
            "--config-path",
            file.to_str().unwrap(),
            "--json",
        ]))
        .unwrap()
    };
    assert_eq!(keys(&made), ["factory", "id", "path", "txn"]);
    assert_eq!(made["path"], "/a");
    assert_eq!(made["factory"], "append");
    assert_eq!(made["txn"], 1);
    let stored = h.stored("/a");
    assert_eq!(stored.factory, "append");
    assert_eq!(stored.config, text);
    assert_eq!(stored.updated_txn, 1);

    let run = h.mknod("append", "/a", "target: /other.log\ntext: b\n");
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &["/a", "already exists"]);
    assert_eq!(h.stored("/a").config, text);

    let replaced = "target: /other.log\ntext: b\n";
    let file = h.config("b.yaml", replaced);
    h.ok(&[
        "mknod",
        "append",
        "/a",
        "--config-path",
        file.to_str().unwrap(),
        "--overwrite",
    ]);
    let stored = h.stored("/a");
    assert_eq!(stored.config, replaced);
    assert_eq!(stored.updated_txn, 2);
    let list: Value = serde_json::from_str(&h.ok(&["list", "/a", "--json"])).unwrap();
    assert_eq!(list["entries"][0]["kind"], "factory");
    assert_eq!(list["entries"][0]["id"], made["id"]);

    // --overwrite does not turn a directory into a factory node.
    h.ok(&["mkdir", "/d"]);
    let file = h.config("c.yaml", "message: hi\n");
    let run = h.run(&[
        "mknod",
        "echo",
        "/d",
        "--config-path",
        file.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_err_names(&run, &["/d", "not a factory node"]);
}

// ---------------------------------------------------------------------------------------------
// run: environment, commit, rollback

// ${env:VAR} and ${env:VAR:-default} are expanded when the node runs; $$ is a literal $.
#[test]
fn run_expands_env_defaults_and_dollar_escape() {
    let h = Harness::new();
    let home = std::env::var("HOME").expect("HOME is set for tests");
    h.mknod_ok(
        "append",
        "/home",
        &append_config("/out.log", "${env:HOME}|", ""),
    );
    h.mknod_ok(
        "append",
        "/default",
        &append_config("/out.log", &format!("${{env:{UNSET_VAR}:-fallback}}|"), ""),
    );
    h.mknod_ok(
        "append",
        "/dollar",
        &append_config("/out.log", "cost $$5 and $HOME", ""),
    );
    h.ok(&["run", "/home", "write"]);
    h.ok(&["run", "/default", "write"]);
    h.ok(&["run", "/dollar", "write"]);
    assert_eq!(
        h.content("/out.log").unwrap(),
        format!("{home}|fallback|cost $5 and $HOME")
    );
    // Still stored unexpanded.
    assert!(h.stored("/home").config.contains("${env:HOME}"));
    assert!(h.stored("/dollar").config.contains("$$5"));
    // A read-only command expands too.
    let len = h.content("/out.log").unwrap().len();
    let shown = h.ok(&["run", "/home", "show"]);
    assert_eq!(shown, format!("target=/out.log text={home}| len={len}\n"));
}

// Regression: an unset variable without a default fails the run naming the variable and the
// node, and commits nothing; mknod refuses it up front.
#[test]
fn run_with_unset_variable_names_it() {
    let h = Harness::new();
    let text = append_config("/out.log", &format!("${{env:{UNSET_VAR}}}"), "");
    let run = h.mknod("append", "/n", &text);
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &[UNSET_VAR, "line 2"]);

    h.mknod_unchecked("append", "/n", &text);
    let before = h.log().len();
    let run = h.fails(&["run", "/n", "write"]);
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &["/n", UNSET_VAR, "line 2"]);
    assert_eq!(h.log().len(), before);
    assert_eq!(h.content("/out.log"), None);
}

// A successful write commits one transaction with the factory's summary and the argv.
#[test]
fn run_success_commits_one_txn_with_summary_and_argv() {
    let h = Harness::new();
    h.mknod_ok("append", "/w", &append_config("/out.log", "hello\n", ""));
    let out = h.ok(&["run", "/w", "write"]);
    assert_eq!(out, "appended 6 bytes to /out.log\n");
    h.ok(&["run", "/w", "write"]);
    assert_eq!(h.content("/out.log").unwrap(), "hello\nhello\n");
    let log = h.log();
    assert_eq!(log.len(), 3, "mknod + two runs");
    assert_eq!(log[0]["txn"], 3);
    assert_eq!(log[0]["summary"], "append to /out.log by /w");
    let argv: Vec<&str> = log[0]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        argv,
        [
            "pond",
            "--pond",
            h.pond.to_str().unwrap(),
            "run",
            "/w",
            "write"
        ]
    );
    let shown: Value = serde_json::from_str(&h.ok(&["show", "/out.log", "--json"])).unwrap();
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2);
    assert_eq!(shown["versions"][1]["txn"], 3);

    // A read-only command commits nothing.
    assert_eq!(
        h.ok(&["run", "/w", "show"]),
        "target=/out.log text=hello\n len=12\n"
    );
    h.mknod_ok("echo", "/e", "message: hi there\n");
    assert_eq!(h.ok(&["run", "/e", "say"]), "hi there\n");
    assert_eq!(h.log().len(), 4);
}

// Regression: a run that fails after appending rolls back (nothing appended, no transaction)
// and exits non-zero naming the node.
#[test]
fn failing_run_rolls_back_and_names_node() {
    let h = Harness::new();
    h.mknod_ok("append", "/ok", &append_config("/out.log", "kept\n", ""));
    h.ok(&["run", "/ok", "write"]);
    h.mknod_ok(
        "append",
        "/bad",
        &append_config("/out.log", "lost\n", "fail: true\n"),
    );
    h.mknod_ok(
        "append",
        "/bad-new",
        &append_config("/new.log", "lost\n", "fail: true\n"),
    );
    let txns = h.log().len();

    let run = h.fails(&["run", "/bad", "write"]);
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &["/bad", "asked to fail"]);
    // Regression: the factory's message is printed once, not once per error-chain level.
    assert_eq!(run.err.matches("asked to fail").count(), 1, "{}", run.err);
    let run = h.fails(&["run", "/bad-new", "write"]);
    assert_err_names(&run, &["/bad-new"]);

    assert_eq!(h.log().len(), txns);
    assert_eq!(h.content("/out.log").unwrap(), "kept\n");
    assert_eq!(h.content("/new.log"), None);
    let verify: Value = serde_json::from_str(&h.ok(&["verify", "--json"])).unwrap();
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["versions"], 1);
}

// A dry run is rolled back; a non-fatal error commits what was done, then exits non-zero naming
// the node and the problem.
#[test]
fn dry_run_discards_and_warnings_commit_then_fail() {
    let h = Harness::new();
    h.mknod_ok("append", "/w", &append_config("/out.log", "x", ""));
    h.ok(&["run", "/w", "write", "--dry-run"]);
    assert_eq!(h.content("/out.log"), None);
    assert_eq!(h.log().len(), 1);

    h.mknod_ok(
        "append",
        "/warn",
        &append_config("/out.log", "y", "warning: one host file was unreadable\n"),
    );
    let run = h.fails(&["run", "/warn", "write"]);
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(
        &run,
        &["/warn", "one host file was unreadable", "committed txn 3"],
    );
    assert_eq!(h.content("/out.log").unwrap(), "y");
}

// ---------------------------------------------------------------------------------------------
// help and usage

// `pond run PATH --help` and a bare `pond run PATH` list the factory's commands; an unknown
// command is a one-line usage error.
#[test]
fn run_help_lists_commands_and_unknown_command_is_usage_error() {
    let h = Harness::new();
    h.mknod_ok("append", "/w", &append_config("/out.log", "x", ""));
    for args in [
        &["run", "/w", "--help"][..],
        &["run", "/w", "-h"],
        &["run", "/w"],
    ] {
        let run = h.run(args);
        let expected = if args.len() == 2 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
        assert_eq!(run.code, expected, "{args:?}");
        for needle in [
            "write",
            "show",
            "Append the configured text",
            "Print the expanded config",
        ] {
            assert!(
                run.out.contains(needle),
                "{args:?} help lacks {needle:?}: {}",
                run.out
            );
        }
        assert!(run.err.is_empty(), "{}", run.err);
    }
    let run = h.run(&["run", "/w", "write", "--help"]);
    assert_eq!(run.code, ExitCode::SUCCESS);
    assert!(run.out.contains("--dry-run"), "{}", run.out);

    let run = h.fails(&["run", "/w", "nosuch"]);
    assert_eq!(run.code, ExitCode::from(2));
    assert_err_names(&run, &["nosuch"]);
    let run = h.fails(&["run", "/w", "write", "--bogus"]);
    assert_eq!(run.code, ExitCode::from(2));
    assert_err_names(&run, &["--bogus"]);

    // Not a factory node, no node at all.
    h.ok(&["mkdir", "/d"]);
    let run = h.fails(&["run", "/d", "write"]);
    assert_err_names(&run, &["/d", "not a factory node"]);
    let run = h.fails(&["run", "/none", "write"]);
    assert_err_names(&run, &["/none"]);
    assert_eq!(h.log().len(), 2);
}

// A node whose factory is not in this build names the factory and the known ones.
#[test]
fn run_node_of_unknown_factory_lists_known() {
    let h = Harness::new();
    h.mknod_unchecked("retired", "/old", "x: 1\n");
    let run = h.fails(&["run", "/old", "go"]);
    assert_err_names(&run, &["/old", "retired", "append, echo"]);
}

// ---------------------------------------------------------------------------------------------
// chains

fn chain(h: &Harness, links: &[(&str, &str, &[&str], bool)]) {
    for (node, target, downstream, fail) in links {
        let downstream = format!("downstream: [{}]\nfail: {fail}\n", downstream.join(", "));
        h.mknod_ok("append", node, &append_config(target, node, &downstream));
    }
}

// A → B → C: `run A write` commits A, then B and C, each in its own transaction.
#[test]
fn chain_runs_each_downstream_in_its_own_txn() {
    let h = Harness::new();
    chain(
        &h,
        &[
            ("/a", "/a.log", &["/b"], false),
            ("/b", "/b.log", &["/c"], false),
            ("/c", "/c.log", &[], false),
        ],
    );
    let before = h.log().len();
    let out = h.ok(&["run", "/a", "write"]);
    assert!(out.contains("downstream /b:"), "{out}");
    assert!(out.contains("downstream /c:"), "{out}");
    let log = h.log();
    assert_eq!(log.len(), before + 3);
    let summaries: Vec<&str> = log[..3]
        .iter()
        .map(|t| t["summary"].as_str().unwrap())
        .collect();
    assert_eq!(
        summaries,
        [
            "append to /c.log by /c",
            "append to /b.log by /b",
            "append to /a.log by /a"
        ]
    );
    for (file, text) in [("/a.log", "/a"), ("/b.log", "/b"), ("/c.log", "/c")] {
        assert_eq!(h.content(file).unwrap(), text);
    }
}

// Regression: a read-only command (`show`) on a node with downstream stages runs alone; only
// commands that write trigger the chain.
#[test]
fn read_only_command_does_not_run_downstream() {
    let h = Harness::new();
    chain(
        &h,
        &[
            ("/a", "/a.log", &["/b"], false),
            ("/b", "/b.log", &[], false),
        ],
    );
    let before = h.log().len();
    let out = h.ok(&["run", "/a", "show"]);
    assert!(!out.contains("downstream"), "{out}");
    assert_eq!(h.log().len(), before);
    assert!(h.content("/b.log").is_none());
}

// Regression: a failing downstream B leaves A's commit in place, rolls back B, skips C, and
// exits non-zero naming B.
#[test]
fn chain_downstream_failure_keeps_upstream_commit() {
    let h = Harness::new();
    chain(
        &h,
        &[
            ("/a", "/a.log", &["/b"], false),
            ("/b", "/b.log", &["/c"], true),
            ("/c", "/c.log", &[], false),
        ],
    );
    let before = h.log().len();
    let run = h.fails(&["run", "/a", "write"]);
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(
        &run,
        &["/b", "asked to fail", "/a succeeded", "committed txn"],
    );
    let log = h.log();
    assert_eq!(log.len(), before + 1);
    assert_eq!(log[0]["summary"], "append to /a.log by /a");
    assert_eq!(h.content("/a.log").unwrap(), "/a");
    assert_eq!(h.content("/b.log"), None);
    assert_eq!(h.content("/c.log"), None);
}

// Regression: a cycle A → B → A is reported as an error naming the node it loops back to.
#[test]
fn chain_cycle_is_reported() {
    let h = Harness::new();
    chain(
        &h,
        &[
            ("/a", "/a.log", &["/b"], false),
            ("/b", "/b.log", &["/a"], false),
        ],
    );
    let run = h.fails(&["run", "/a", "write"]);
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &["/a", "loops back"]);
    // Each node ran at most once.
    assert!(h.content("/a.log").unwrap_or_default().len() <= 2);
    assert!(h.content("/b.log").unwrap_or_default().len() <= 2);

    let h = Harness::new();
    chain(&h, &[("/self", "/s.log", &["/self"], false)]);
    let run = h.fails(&["run", "/self", "write"]);
    assert_err_names(&run, &["/self", "loops back"]);
}

// With --json a chain prints one JSON document whose `downstream` array nests each stage.
#[test]
fn chain_json_is_one_document_with_downstream() {
    let h = Harness::new();
    chain(
        &h,
        &[
            ("/a", "/a.log", &["/b", "/d"], false),
            ("/b", "/b.log", &["/c"], false),
            ("/c", "/c.log", &[], false),
            ("/d", "/d.log", &[], true),
        ],
    );
    let run = h.fails(&["run", "/a", "write", "--json"]);
    assert_eq!(run.code, ExitCode::FAILURE);
    assert_err_names(&run, &["/d", "asked to fail"]);
    let doc = run.json();
    assert_eq!(doc["node"], "/a");
    assert_eq!(doc["version"], 1);
    let stages = doc["downstream"].as_array().unwrap();
    assert_eq!(stages.len(), 2, "{doc}");
    assert_eq!(stages[0]["path"], "/b");
    assert_eq!(stages[0]["ok"], true);
    assert_eq!(stages[0]["report"]["node"], "/b");
    assert_eq!(stages[0]["report"]["downstream"][0]["path"], "/c");
    assert_eq!(stages[0]["report"]["downstream"][0]["ok"], true);
    assert_eq!(stages[0]["report"]["downstream"][0]["report"]["node"], "/c");
    assert_eq!(stages[1]["path"], "/d");
    assert_eq!(stages[1]["ok"], false);
    assert_eq!(stages[1]["txn"], Value::Null);
    assert!(
        stages[1]["error"]
            .as_str()
            .unwrap()
            .contains("asked to fail")
    );
    // Transaction numbers in the report are the ones in the log.
    let log = h.log();
    let txn_of = |summary: &str| {
        log.iter()
            .find(|t| t["summary"] == summary)
            .map(|t| t["txn"].clone())
            .unwrap()
    };
    assert_eq!(stages[0]["txn"], txn_of("append to /b.log by /b"));
    assert_eq!(
        stages[0]["report"]["downstream"][0]["txn"],
        txn_of("append to /c.log by /c")
    );
    assert_eq!(h.content("/d.log"), None);

    // A chain that succeeds exits 0 with the same single document.
    let h = Harness::new();
    chain(
        &h,
        &[
            ("/a", "/a.log", &["/b"], false),
            ("/b", "/b.log", &[], false),
        ],
    );
    let run = h.run(&["run", "/a", "write", "--json"]);
    assert_eq!(run.code, ExitCode::SUCCESS, "{}", run.err);
    let doc = run.json();
    assert_eq!(doc["downstream"][0]["report"]["node"], "/b");
    assert_eq!(doc["downstream"][0]["ok"], true);
}
