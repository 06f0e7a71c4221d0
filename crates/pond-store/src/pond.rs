//! Creating and opening a pond directory.
//!
//! A pond directory holds `catalog.sqlite` (with its WAL files), `data/` (per file node: one or
//! more data file generations and one outboard), `lock` (the writer lock), `readers` (the lock
//! every snapshot holds shared) and, only while a write transaction is open or after one was
//! interrupted, `journal` (the nodes whose data files it touched).

use crate::catalog::{self, CATALOG_FILE, FORMAT_VERSION, OLDEST_UPGRADABLE_FORMAT};
use crate::data::Compression;
use crate::error::{IoContext, Result, StoreError};
use crate::lock::{NodeLock, ReaderLock, WriterLock};
use crate::perms::{self, Sharing};
use crate::txn::Transaction;
use crate::view::{Snapshot, View};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where transaction times come from: the system clock, or a clock a test or a simulation sets.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(SystemTime::now))
    }

    /// A clock that reads `now`.
    pub fn new(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// An opened pond directory.
#[derive(Debug, Clone)]
pub struct Pond {
    dir: PathBuf,
    catalog_path: PathBuf,
    compression: Compression,
    clock: Clock,
}

impl Pond {
    /// Creates a new pond in `dir` (created if missing; it must not be a pond already), readable
    /// as `sharing` says (the directory's mode is set; see `perms.rs`), with a new instance id.
    pub fn init(dir: &Path, compression: Compression, sharing: Sharing) -> Result<Pond> {
        let catalog_path = dir.join(CATALOG_FILE);
        if catalog_path.exists() {
            return Err(StoreError::AlreadyAPond {
                dir: dir.to_path_buf(),
            });
        }
        perms::create_dir(dir, sharing.dir_mode()).at(dir)?;
        perms::set_mode(dir, sharing.dir_mode()).at(dir)?;
        let data = dir.join("data");
        perms::create_dir(&data, sharing.dir_mode()).at(&data)?;
        // The catalog is created with the files' mode; SQLite gives its log files the same.
        perms::open_rw(&catalog_path, perms::file_mode(dir)).at(&catalog_path)?;
        let conn = catalog::open(&catalog_path, true)?;
        catalog::create_schema(
            &conn,
            &catalog_path,
            &compression.to_string(),
            &new_instance_id(),
        )?;
        drop(conn);
        sync_dir(dir)?;
        Self::open(dir)
    }

    /// Opens an existing pond. A format 1 pond is upgraded to format 2 in place (a catalog-only
    /// change); any other format is refused.
    pub fn open(dir: &Path) -> Result<Pond> {
        let catalog_path = dir.join(CATALOG_FILE);
        if !catalog_path.is_file() {
            return Err(StoreError::NotAPond {
                dir: dir.to_path_buf(),
                catalog: CATALOG_FILE,
            });
        }
        let conn = catalog::open_for_reading(&catalog_path)?;
        let version = catalog::setting(&conn, &catalog_path, "format_version")?;
        match version.as_deref().and_then(|v| v.parse::<u32>().ok()) {
            Some(FORMAT_VERSION) => catalog::enable_incremental_vacuum(&conn, &catalog_path),
            Some(found) if (OLDEST_UPGRADABLE_FORMAT..FORMAT_VERSION).contains(&found) => {
                catalog::upgrade(&conn, &catalog_path)?
            }
            _ => {
                return Err(StoreError::UnsupportedFormat {
                    dir: dir.to_path_buf(),
                    found: version.unwrap_or_else(|| "none".to_string()),
                    supported: FORMAT_VERSION,
                });
            }
        }
        let compression = catalog::setting(&conn, &catalog_path, "compression")?
            .map(|c| Compression::parse(&c))
            .transpose()?
            .unwrap_or(crate::data::DEFAULT_COMPRESSION);
        Ok(Pond {
            dir: dir.to_path_buf(),
            catalog_path,
            compression,
            clock: Clock::system(),
        })
    }

    /// This pond with transaction times read from `clock` (tests and simulations).
    pub fn with_clock(mut self, clock: Clock) -> Pond {
        self.clock = clock;
        self
    }

    /// The clock transactions take their time from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The pond directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How new frames are compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// A read-only view of the last committed state. It never blocks a writer; it holds the
    /// reader lock shared while it (or a reader it handed out) lives, so data files it may read
    /// are not removed under it. It waits only while a writer removes retired files.
    pub fn snapshot(&self) -> Result<Snapshot> {
        // The lock comes first: a snapshot that starts after a writer removed retired files sees
        // a catalog state that no longer references them.
        let readers = Arc::new(ReaderLock::acquire(&self.dir)?);
        let conn = catalog::open_for_reading(&self.catalog_path)?;
        let view = View::new(
            conn,
            self.dir.clone(),
            self.catalog_path.clone(),
            Some(readers),
        );
        view.begin_read()?;
        Ok(Snapshot::new(view))
    }

    /// Starts the single write transaction, waiting up to `lock_timeout` for another writer.
    /// `argv` is recorded with the transaction.
    pub fn begin(&self, argv: Vec<String>, lock_timeout: Duration) -> Result<Transaction> {
        let lock = WriterLock::acquire(&self.dir, lock_timeout)?;
        let conn = catalog::open(&self.catalog_path, false)?;
        let view = View::new(conn, self.dir.clone(), self.catalog_path.clone(), None);
        Transaction::begin(view, lock, argv, self.compression, self.clock.clone())
    }

    /// Moves the catalog's write-ahead log into the catalog and empties it, when no reader is in
    /// the way (best effort: a busy catalog keeps its log for a later checkpoint).
    pub fn checkpoint(&self) -> Result<()> {
        let conn = catalog::open(&self.catalog_path, false)?;
        let _ = conn.busy_timeout(Duration::ZERO);
        let _: rusqlite::Result<()> =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(())
    }

    /// Bytes the catalog takes on disk (with its write-ahead log).
    pub fn catalog_bytes(&self) -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                let mut name = self.catalog_path.clone().into_os_string();
                name.push(suffix);
                std::fs::metadata(name).ok()
            })
            .map(|m| m.len())
            .sum()
    }

    /// Takes the run lock of factory node `id` (named `path` in errors), waiting up to
    /// `timeout` for another run of it to end. Held while a run reads outside the writer lock
    /// and commits later, so two runs of one node never interleave.
    pub fn lock_node(&self, id: i64, path: &str, timeout: Duration) -> Result<NodeLock> {
        NodeLock::acquire(&self.dir, id, path, timeout)
    }
}

/// 16 hex digits that tell this pond apart from every other: from the kernel's random source,
/// or, where it cannot be read, a hash of the host name, the time and the process id.
fn new_instance_id() -> String {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if random.is_err() {
        let seed = format!(
            "{:?} {:?} {}",
            std::fs::read_to_string("/proc/sys/kernel/hostname"),
            std::time::SystemTime::now(),
            std::process::id()
        );
        bytes.copy_from_slice(&blake3::hash(seed.as_bytes()).as_bytes()[..8]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// fsyncs a directory so that entries created in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
