//! The `pond` command line.
//!
//! # Layout
//! - [`cli`]: the clap definitions of every command and flag.
//! - `commands/`: one file per command; each takes the parsed arguments and writes its report
//!   (human text, or one JSON document with `--json`) to stdout.
//! - [`registry`]: the built-in factories.
//!
//! [`main_with`] parses arguments, opens the pond, dispatches, and turns any error into one line
//! on stderr and a non-zero exit. A closed stdout (`pond log | head`) exits 0.

pub mod cli;
mod commands;
mod output;
pub mod registry;

use clap::Parser;
use pond_factory::Registry;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// Sets up `tracing` on stderr; the level comes from `POND_LOG` (default `warn`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Runs the command line `args` with `registry`, writing reports to `out` and errors to `err`.
pub fn main_with(
    registry: &Registry,
    args: impl IntoIterator<Item = OsString>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return report_clap(&e, out, err),
    };
    let argv = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match commands::dispatch(cli, registry, argv, out) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            if let Some(clap_error) = e
                .downcast_ref::<pond_factory::runner::RunError>()
                .and_then(|r| r.usage())
            {
                return report_clap(clap_error, out, err);
            }
            let _ = writeln!(err, "error: {}", one_line(&error_chain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// Help and version go to stdout with exit 0; usage errors are one line on stderr.
fn report_clap(e: &clap::Error, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = write!(out, "{}", e.render());
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            // The message is the first paragraph: a missing-argument error lists the arguments
            // on the lines after its first; usage and tips follow a blank line.
            let rendered = e.render().to_string();
            let paragraph = rendered.trim_start().split("\n\n").next().unwrap_or("");
            let message = one_line(paragraph);
            let message = match message.trim_start_matches("error: ") {
                "" => "invalid arguments",
                text => text,
            };
            let _ = writeln!(err, "error: {message} (see --help)");
            ExitCode::from(2)
        }
    }
}

/// `{e:#}` without repeats: many error types print their source in their own message too, so a
/// cause already spelled out by the message before it is skipped.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|json| json.io_error_kind() == Some(BrokenPipe))
    })
}
