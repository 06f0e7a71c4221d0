//! The `pond` binary: a thin shell over [`pond::main_with`] with the built-in factory registry.

use std::process::ExitCode;

fn main() -> ExitCode {
    pond::init_logging();
    let stdout = std::io::stdout();
    // stderr stays unlocked: log events from worker threads (retries, say) write to it while the
    // command runs; holding its lock here would make them wait forever.
    pond::main_with(
        &pond::registry::registry(),
        std::env::args_os(),
        &mut stdout.lock(),
        &mut std::io::stderr(),
    )
}
