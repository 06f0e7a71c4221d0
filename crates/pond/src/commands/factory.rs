//! Factory commands: `pond list-factories`, `pond mknod`, `pond run`.

use super::{Env, pond_path};
use crate::output;
use anyhow::Context;
use pond_factory::runner::Runner;
use pond_factory::{Control, Registry};
use pond_store::PondPath;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Serialize)]
struct FactoryInfo {
    name: &'static str,
    description: &'static str,
}

#[derive(Serialize)]
struct FactoryList {
    factories: Vec<FactoryInfo>,
}

pub fn list(registry: &Registry, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let factories: Vec<_> = registry
        .iter()
        .map(|f| FactoryInfo {
            name: f.name(),
            description: f.description(),
        })
        .collect();
    if json {
        output::json(out, &FactoryList { factories })?;
    } else if factories.is_empty() {
        writeln!(out, "no factories are built into this pond")?;
    } else {
        for f in &factories {
            writeln!(out, "{:<12} {}", f.name, f.description)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn runner<'a>(env: &'a Env<'_>, bin_name: String) -> Runner<'a> {
    Runner {
        pond: &env.pond,
        registry: env.registry,
        argv: env.argv.clone(),
        lock_timeout: env.lock_timeout,
        env: &|var| std::env::var(var).ok(),
        bin_name,
        control: Control::new(),
        before_long_running: None,
    }
}

/// Turns SIGTERM/SIGINT into a stop request and SIGHUP into a reload request for a
/// long-running command. A second stop signal exits at once (safe: every step is a
/// transaction, and the next start resumes from the last commit).
fn handle_signals(control: &Control) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    let control = control.clone();
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    tracing::info!("SIGHUP: reloading configs after the current step");
                    control.request_reload();
                } else if control.stopping() {
                    tracing::warn!("second stop signal: exiting without draining");
                    std::process::exit(130);
                } else {
                    tracing::info!("stop requested: draining in-flight work");
                    control.request_stop();
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

#[derive(Serialize)]
struct MknodReport {
    path: String,
    factory: String,
    id: i64,
    txn: Option<u64>,
}

pub fn mknod(
    env: &Env<'_>,
    factory: &str,
    path: &str,
    config_path: &Path,
    overwrite: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let path = pond_path(path)?;
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("reading config {}", config_path.display()))?;
    let runner = runner(env, format!("pond run {path}"));
    runner.validate(factory, &text, &config_path.display().to_string())?;
    let mut txn = env.begin()?;
    if let Some(parent) = path.parent() {
        txn.mkdir(&parent, true)?;
    }
    let node = txn.mknod(&path, factory, &text, overwrite)?;
    let txn = txn.commit(&format!("mknod {factory} {path}"))?;
    let report = MknodReport {
        path: path.to_string(),
        factory: factory.to_string(),
        id: node.id,
        txn,
    };
    if json {
        output::json(out, &report)?;
    } else {
        writeln!(
            out,
            "{} node {} ({})",
            factory,
            report.path,
            output::txn_text(txn)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

const HELP_FLAGS: &[&str] = &["-h", "--help", "help"];

/// `pond run logfile sync`: a factory's name where a node's path belongs. Says how to install
/// and run a node of it, instead of "no such file".
fn refuse_factory_name(env: &Env<'_>, path: &PondPath, args: &[String]) -> anyhow::Result<()> {
    let [name] = path.components() else {
        return Ok(());
    };
    if env.registry.get(name).is_none() || env.pond.snapshot()?.lookup(path)?.is_some() {
        return Ok(());
    }
    let command = args.first().map_or("COMMAND", String::as_str);
    anyhow::bail!(
        "`{name}` is a factory, not a node of the pond: install a node of it with `pond mknod \
         {name} /etc/NAME --config-path CONFIG.yaml`, then run `pond run /etc/NAME {command}` \
         (`pond run /etc/NAME --help` lists its commands)"
    )
}

pub fn run(
    env: &Env<'_>,
    path: Option<&str>,
    args: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let Some(path) = path.filter(|p| !HELP_FLAGS.contains(p)) else {
        use clap::CommandFactory;
        let mut cli = crate::cli::Cli::command();
        if let Some(run) = cli.find_subcommand_mut("run") {
            write!(out, "{}", run.render_long_help())?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let path = pond_path(path)?;
    refuse_factory_name(env, &path, args)?;
    let runner = runner(env, format!("pond run {path}"));
    if args
        .first()
        .is_none_or(|a| HELP_FLAGS.contains(&a.as_str()))
    {
        let factory = runner.factory_of(&path)?;
        write!(
            out,
            "{}",
            factory.commands(&runner.bin_name).render_long_help()
        )?;
        return Ok(if args.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    let signals = |control: &Control| handle_signals(control).map_err(Into::into);
    let runner = Runner {
        before_long_running: Some(&signals),
        ..runner
    };
    runner.run(&path, args, out)?;
    Ok(ExitCode::SUCCESS)
}
