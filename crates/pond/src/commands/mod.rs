//! One module per command; [`dispatch`] routes the parsed command line to it.

mod cat;
mod copy;
mod factory;
mod init;
mod list;
mod log;
mod maintain;
mod mkdir;
mod settings;
mod show;
mod status;
mod verify;

use crate::cli::{Cli, Command};
use anyhow::Context;
use pond_factory::Registry;
use pond_store::{Pond, PondPath};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// What every command needs besides its own arguments.
pub struct Env<'a> {
    pub pond: Pond,
    pub argv: Vec<String>,
    pub lock_timeout: Duration,
    pub registry: &'a Registry,
}

impl Env<'_> {
    /// Starts the write transaction.
    pub fn begin(&self) -> anyhow::Result<pond_store::Transaction> {
        Ok(self.pond.begin(self.argv.clone(), self.lock_timeout)?)
    }
}

/// Runs `cli`, returning the exit code for commands that report problems themselves.
pub fn dispatch(
    cli: Cli,
    registry: &Registry,
    argv: Vec<String>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let lock_timeout = Duration::from_secs(cli.lock_timeout);
    let pond_dir = cli.pond.as_deref();
    match cli.command {
        Command::Init {
            compression,
            shared_group,
            json,
        } => init::run(
            require_dir(pond_dir)?,
            &compression,
            shared_group,
            json.json,
            out,
        ),
        Command::ListFactories { json } => factory::list(registry, json.json, out),
        command => {
            let dir = require_dir(pond_dir)?;
            let pond = Pond::open(dir).with_context(|| {
                format!(
                    "opening the pond at {} (from --pond or POND)",
                    dir.display()
                )
            })?;
            let env = Env {
                pond,
                argv,
                lock_timeout,
                registry,
            };
            match command {
                Command::Mkdir {
                    parents,
                    paths,
                    json,
                } => mkdir::run(&env, &paths, parents, json.json, out),
                Command::Copy { paths, json } => copy::run(&env, &paths, json.json, out),
                Command::List { glob, long, json } => {
                    list::run(&env, glob.as_deref(), long, json.json, out)
                }
                Command::Cat { path, version } => cat::run(&env, &path, version, out),
                Command::Show { path, json } => show::run(&env, &path, json.json, out),
                Command::Log { limit, json } => log::run(&env, limit, json.json, out),
                Command::Verify { path, json } => {
                    verify::run(&env, path.as_deref(), json.json, out)
                }
                Command::Maintain {
                    path,
                    max_bytes,
                    min_frame,
                    json,
                } => maintain::run(
                    &env,
                    path.as_deref(),
                    pond_store::CompactLimits {
                        max_bytes,
                        min_frame,
                    },
                    json.json,
                    out,
                ),
                Command::Mknod {
                    factory,
                    path,
                    config_path,
                    overwrite,
                    json,
                } => factory::mknod(
                    &env,
                    &factory,
                    &path,
                    &config_path,
                    overwrite,
                    json.json,
                    out,
                ),
                Command::Run { path, args } => factory::run(&env, path.as_deref(), &args, out),
                Command::Settings {
                    history_recent,
                    history_interval,
                    json,
                } => settings::run(
                    &env,
                    history_recent.as_deref(),
                    history_interval.as_deref(),
                    json.json,
                    out,
                ),
                Command::Status { json } => status::run(&env, json.json, out),
                Command::Init { .. } | Command::ListFactories { .. } => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

fn require_dir(dir: Option<&Path>) -> anyhow::Result<&Path> {
    dir.context("no pond given: pass --pond DIR or set the POND environment variable")
}

/// Parses a pond path argument.
pub fn pond_path(text: &str) -> anyhow::Result<PondPath> {
    Ok(PondPath::parse(text)?)
}
