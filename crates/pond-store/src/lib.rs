//! The pond: a local-first, versioned, transactional store of directories and append-only files.
//!
//! # Layout
//! - [`Pond`] (`pond.rs`): creating and opening a pond directory, and its settings.
//! - [`Snapshot`] and [`Transaction`]: the two ways in. Both dereference to [`View`] (`view.rs`),
//!   the read API (resolve paths, list, read any version, versions, transactions, factory nodes).
//!   A [`Transaction`] (`txn.rs`) adds the changes: directories, files, appends, renames, factory
//!   nodes, per-node state. It commits all-or-nothing.
//! - `history.rs`: [`Transaction::fold_history`] thins old versions and transactions to the
//!   pond's [`HistoryPolicy`], so the catalog grows with files and kept history points, not steps.
//! - `compact.rs`: [`Transaction::compact`] merges small frames across version boundaries into a
//!   new data file generation; `retire.rs`: the old bytes are retired and removed by a later
//!   writer once no [`Snapshot`] can still read them.
//! - `catalog.rs`: the SQLite catalog; `data.rs`: framed, compressed data files and their
//!   outboards; `lock.rs`: the single-writer lock and the reader lock; [`verify`]: re-checking
//!   every stored byte.
//!
//! # Data flow of an append
//! A source is read in frames of up to 1 MiB. Each frame extends the file's incremental BLAKE3
//! tree (`pond-hash`), whose stable outboard nodes go to `data/<node>.obao`, and is compressed and
//! written at the end of `data/<node>.<gen>.dat`. The version row (segment and cumulative hashes,
//! the tree frontier) and the frame index go into the catalog. On commit the data files are
//! fsynced before the catalog commits; a crash before that leaves bytes past the committed
//! lengths, which are never read and are cut on the next write.

mod catalog;
mod compact;
mod data;
mod error;
mod history;
mod lock;
mod path;
mod perms;
mod pond;
mod retire;
mod txn;
pub mod verify;
mod view;

pub use catalog::{CATALOG_FILE, FORMAT_VERSION, ROOT_ID};
pub use compact::{COMPACTED_FRAME_RAW, CompactLimits, CompactPass, CompactReport};
pub use data::{Compression, ContentReader, DEFAULT_COMPRESSION, MAX_FRAME_RAW};
pub use error::{Result, StoreError};
pub use history::{FoldReport, Folded, FoldedCommand, FoldedNote, HistoryPolicy};
pub use lock::{LOCK_FILE, NODE_LOCKS_DIR, NodeLock, READERS_FILE};
pub use path::PondPath;
pub use perms::{Sharing, file_mode};
pub use pond::{Clock, Pond};
pub use retire::{GarbageReport, RemovedFile};
pub use txn::Transaction;
pub use view::{
    FactoryNode, Node, NodeKind, OutboardReader, Snapshot, Storage, TxnRecord, Version, View,
};

/// `at` as RFC 3339 UTC with millisecond precision (how transaction times are recorded; the
/// fixed width makes them sort as text).
pub(crate) fn rfc3339(at: std::time::SystemTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(at)
        .format(&format)
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Seconds since the Unix epoch of a time recorded by [`rfc3339`], or `None` when it does not
/// parse.
pub(crate) fn unix_seconds(text: &str) -> Option<f64> {
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(parsed.unix_timestamp_nanos() as f64 / 1e9)
}
