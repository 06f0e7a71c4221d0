//! The `pond` binary: a thin shell over [`pond::main_with`] with the built-in factory registry.

use std::process::ExitCode;

fn main() -> ExitCode {
    pond::init_logging();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    pond::main_with(
        &pond::registry::registry(),
        std::env::args_os(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}
