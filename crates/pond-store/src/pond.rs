//! Creating and opening a pond directory.
//!
//! A pond directory holds `catalog.sqlite` (with its WAL files), `data/` (one data file and one
//! outboard per file node), `lock` (the writer lock) and, only while a write transaction is open
//! or after one was interrupted, `journal` (the nodes whose data files it touched).

use crate::catalog::{self, CATALOG_FILE, FORMAT_VERSION};
use crate::data::Compression;
use crate::error::{IoContext, Result, StoreError};
use crate::lock::WriterLock;
use crate::txn::Transaction;
use crate::view::{Snapshot, View};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An opened pond directory.
#[derive(Debug, Clone)]
pub struct Pond {
    dir: PathBuf,
    catalog_path: PathBuf,
    compression: Compression,
}

impl Pond {
    /// Creates a new pond in `dir` (created if missing; it must not be a pond already).
    pub fn init(dir: &Path, compression: Compression) -> Result<Pond> {
        let catalog_path = dir.join(CATALOG_FILE);
        if catalog_path.exists() {
            return Err(StoreError::AlreadyAPond {
                dir: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir.join("data")).at(dir)?;
        let conn = catalog::open(&catalog_path, true)?;
        catalog::create_schema(&conn, &catalog_path, &compression.to_string())?;
        drop(conn);
        sync_dir(dir)?;
        Self::open(dir)
    }

    /// Opens an existing pond.
    pub fn open(dir: &Path) -> Result<Pond> {
        let catalog_path = dir.join(CATALOG_FILE);
        if !catalog_path.is_file() {
            return Err(StoreError::NotAPond {
                dir: dir.to_path_buf(),
                catalog: CATALOG_FILE,
            });
        }
        let conn = catalog::open(&catalog_path, false)?;
        let version = catalog::setting(&conn, &catalog_path, "format_version")?;
        if version.as_deref() != Some(&FORMAT_VERSION.to_string()) {
            return Err(StoreError::UnsupportedFormat {
                dir: dir.to_path_buf(),
                found: version.unwrap_or_else(|| "none".to_string()),
                supported: FORMAT_VERSION,
            });
        }
        let compression = catalog::setting(&conn, &catalog_path, "compression")?
            .map(|c| Compression::parse(&c))
            .transpose()?
            .unwrap_or(crate::data::DEFAULT_COMPRESSION);
        Ok(Pond {
            dir: dir.to_path_buf(),
            catalog_path,
            compression,
        })
    }

    /// The pond directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How new frames are compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// A read-only view of the last committed state; never blocks and never blocks a writer.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let conn = catalog::open(&self.catalog_path, false)?;
        let view = View::new(conn, self.dir.clone(), self.catalog_path.clone());
        view.begin_read()?;
        Ok(Snapshot::new(view))
    }

    /// Starts the single write transaction, waiting up to `lock_timeout` for another writer.
    /// `argv` is recorded with the transaction.
    pub fn begin(&self, argv: Vec<String>, lock_timeout: Duration) -> Result<Transaction> {
        let lock = WriterLock::acquire(&self.dir, lock_timeout)?;
        let conn = catalog::open(&self.catalog_path, false)?;
        let view = View::new(conn, self.dir.clone(), self.catalog_path.clone());
        Transaction::begin(view, lock, argv, self.compression)
    }
}

/// fsyncs a directory so that entries created in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
