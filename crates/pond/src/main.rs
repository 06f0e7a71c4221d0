//! The `pond` binary: a thin shell over [`pond::main_with`] with the built-in factory registry.

use std::process::ExitCode;

fn main() -> ExitCode {
    pond::init_logging();
    raise_open_file_limit();
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

/// Raises the soft limit on open files to the hard limit. A first sync of a node with many new
/// files (hour files of weeks of a node's history) keeps a few descriptors per file until its
/// transaction commits; the usual soft limit of 1024 would fail it with "Too many open files"
/// on every retry. The hard limit is what the operator allows; when it is too low too, the error
/// names the file it could not open.
#[allow(unsafe_code)]
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the `rlimit` value we pass, which
    // lives on this stack frame for the duration of each call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::debug!("could not raise the open file limit");
            }
        }
    }
}
