//! Stop and reload requests for long-running commands.
//!
//! The `pond` binary turns SIGTERM/SIGINT into [`Control::request_stop`] and SIGHUP into
//! [`Control::request_reload`]; a long-running command checks [`Control::stopping`] between
//! steps and registers a waker ([`Control::on_request`]) so a request interrupts its wait at once
//! instead of after a timeout. Clones share the same flags.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Waker = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Inner {
    stop: AtomicBool,
    reload: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

/// Shared stop/reload flags plus the wakers to call when one is raised.
#[derive(Clone, Default)]
pub struct Control {
    inner: Arc<Inner>,
}

impl Control {
    /// Flags nobody has raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every long-running command to finish what is in flight and exit.
    pub fn request_stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Asks a long-running command to re-read its configs.
    pub fn request_reload(&self) {
        self.inner.reload.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether a stop was requested.
    pub fn stopping(&self) -> bool {
        self.inner.stop.load(Ordering::SeqCst)
    }

    /// Whether a reload is pending (it stays pending until [`Control::take_reload`]).
    pub fn reload_requested(&self) -> bool {
        self.inner.reload.load(Ordering::SeqCst)
    }

    /// Clears and returns the pending reload request.
    pub fn take_reload(&self) -> bool {
        self.inner.reload.swap(false, Ordering::SeqCst)
    }

    /// Calls `waker` whenever a stop or reload is requested (from the requesting thread).
    pub fn on_request(&self, waker: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut wakers) = self.inner.wakers.lock() {
            wakers.push(Box::new(waker));
        }
    }

    /// Drops every registered waker (a command that ends unregisters its own).
    pub fn clear_wakers(&self) {
        if let Ok(mut wakers) = self.inner.wakers.lock() {
            wakers.clear();
        }
    }

    fn wake(&self) {
        if let Ok(wakers) = self.inner.wakers.lock() {
            for waker in wakers.iter() {
                waker();
            }
        }
    }
}

/// When a stage should stop reading: the process is stopping, or its session ends (a reload).
#[derive(Clone, Default)]
pub struct StopSignal {
    control: Control,
    session_over: Arc<AtomicBool>,
}

impl StopSignal {
    /// A signal raised by `control`'s stop request or by [`StopSignal::end_session`].
    pub fn new(control: &Control) -> Self {
        Self {
            control: control.clone(),
            session_over: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether to stop.
    pub fn requested(&self) -> bool {
        self.control.stopping() || self.session_over.load(Ordering::SeqCst)
    }

    /// Ends the session (every clone sees it).
    pub fn end_session(&self) {
        self.session_over.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A stop wakes registered waiters, a reload is consumed once, and clones share the flags.
    #[test]
    fn requests_wake_waiters_and_reload_is_taken_once() {
        let control = Control::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let counter = woken.clone();
        control.on_request(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let clone = control.clone();
        clone.request_reload();
        assert!(control.reload_requested());
        assert!(control.take_reload());
        assert!(!control.take_reload());
        assert!(!control.stopping());
        clone.request_stop();
        assert!(control.stopping());
        assert_eq!(woken.load(Ordering::SeqCst), 2);
        control.clear_wakers();
        control.request_stop();
        assert_eq!(woken.load(Ordering::SeqCst), 2);
    }
}
