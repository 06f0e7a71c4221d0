//! `sync`: drain every new complete line of the source files into MongoDB.
//!
//! # Flow
//! The caller's thread reads each file from its cursor in a snapshot of the pond (no lock is
//! held while MongoDB is waited for), splits complete lines, transforms them
//! ([`crate::format`]) and cuts batches. Each batch is written by a task on a small tokio
//! runtime ([`crate::sink`]); at most `max_in_flight` are in flight, and the reader waits for a
//! free slot, so memory stays bounded however far behind the destination is. Acknowledgements
//! come back out of order; a file's cursor advances only over the contiguous acknowledged
//! prefix of its batches. A partial last line (no newline yet) is left for the next run.
//! The cursors are written to the pond in a short transaction when the run ends, and every
//! [`CHECKPOINT_EVERY`] during a long one; after a crash the next run re-sends from the last
//! recorded cursor and MongoDB's duplicate-key errors absorb what was stored.
//!
//! # Which files a run reads
//! Not every file of the source glob: the node keeps a [`Mark`] (the last transaction a run
//! started from, and the files left with bytes past their cursor). A run reads those files and
//! the ones the pond's change index says changed since, by content or by name (`View::
//! files_changed_since`), so its cost follows what is new and what is unsent, not the years of
//! files behind it. A node without a mark, or whose config changed since it was made, looks at
//! every file of the glob once.

use crate::config::Settings;
use crate::format::{Format, LineAt};
use crate::lines::{Item, LineSplitter, MAX_LINE};
use crate::sink::{
    Batch, DEAD_LETTER_RAW, Origin, Sink, SinkError, SourceFile, Stats, dead_letter,
};
use pond_factory::state::{self as versioned, StateError, Versioned};
use pond_factory::{BoxError, Committer, Problem};
use pond_metrics::{Counter, Histogram};
use pond_store::{Node, NodeKind, StoreError, Transaction, View};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How often a long run records the cursors it has so far.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// What is remembered per source file: the offset after the last stored line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    pub offset: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// A line longer than the longest kept (16 MiB) starts at `offset` and was scanned up to
    /// here without its end: the next run goes on from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_line_scanned: Option<u64>,
}

impl Versioned for Cursor {
    const WHAT: &'static str = "mongo cursor";
    const FORMAT: u32 = 1;
}

/// The node-state key of the factory node `factory_id`.
pub fn cursor_key(factory_id: i64) -> String {
    format!("mongo:{factory_id}")
}

/// Reads the cursor of file `node`.
pub fn load_cursor(view: &View, factory_id: i64, node: i64) -> Result<Cursor, StateError> {
    Ok(versioned::load(view, node, &cursor_key(factory_id))?.unwrap_or_default())
}

/// Where the node stands in its source as a whole: what its runs must look at.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mark {
    /// The last transaction of the snapshot the last finished run read: files changed after it
    /// are looked at again.
    pub through_txn: u64,
    /// The config the mark was made with (`factory_nodes.updated_txn`): another config may
    /// select other files, so every file is looked at once.
    pub config_txn: u64,
    /// Files left with bytes past their cursor (sorted node ids).
    pub open: Vec<i64>,
}

impl Versioned for Mark {
    const WHAT: &'static str = "mongo mark";
    const FORMAT: u32 = 1;
}

fn mark_key(factory_id: i64) -> String {
    format!("mongo:{factory_id}:mark")
}

/// The mark of factory node `factory_id`, if it has one.
pub fn load_mark(view: &View, factory_id: i64) -> Result<Option<Mark>, StateError> {
    versioned::load(view, factory_id, &mark_key(factory_id))
}

/// Writes the mark of factory node `factory_id`.
pub fn save_mark(txn: &mut Transaction, factory_id: i64, mark: &Mark) -> Result<(), StateError> {
    versioned::store(txn, factory_id, &mark_key(factory_id), mark)
}

/// Adds file `file` to the files a run must read (after its cursor moved back).
pub fn reopen(txn: &mut Transaction, factory_id: i64, file: i64) -> Result<(), StateError> {
    if let Some(mut mark) = load_mark(txn, factory_id)?
        && let Err(at) = mark.open.binary_search(&file)
    {
        mark.open.insert(at, file);
        save_mark(txn, factory_id, &mark)?;
    }
    Ok(())
}

/// Writes the cursor of file `node`.
pub fn save_cursor(
    txn: &mut Transaction,
    factory_id: i64,
    node: i64,
    cursor: &Cursor,
) -> Result<(), StateError> {
    versioned::store(txn, node, &cursor_key(factory_id), cursor)
}

/// Why a sync failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("reading {path} from the pond: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("recording the cursors: {0}")]
    Commit(BoxError),
}

/// One file in the report.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub path: String,
    pub cursor: u64,
    pub size: u64,
}

/// The `sync --json` document.
#[derive(Debug, Serialize)]
pub struct SyncReport {
    pub inserted: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub retries: u64,
    pub dry_run: bool,
    pub files: Vec<FileReport>,
    #[serde(skip)]
    pub errors: Vec<Problem>,
    /// Reading stopped at the work budget with lines left.
    #[serde(skip)]
    pub more: bool,
}

/// How much one run of a long-running stage may read before it hands the writer lock back.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub bytes: u64,
    pub deadline: std::time::Instant,
}

/// Where the node `factory_id` stands in one source file.
pub struct Position {
    pub file: Node,
    pub cursor: Cursor,
    pub size: u64,
}

impl Position {
    /// Bytes past the cursor.
    pub fn lag(&self) -> u64 {
        self.size.saturating_sub(self.cursor.offset)
    }
}

/// Where `node` stands in every file its source glob selects (walks the glob: for listings).
pub fn all_positions(
    view: &View,
    node: &Node,
    settings: &Settings,
) -> Result<Vec<Position>, SyncError> {
    positions_of(view, node.id, source_files(view, settings)?)
}

/// Where `node` stands in the files a run must look at: those its mark left with unsent bytes
/// and those changed since (every file of the glob without a usable mark). The other files
/// have nothing past their cursors. Also returns the mark it started from.
pub fn live_positions(
    view: &View,
    node: &Node,
    settings: &Settings,
) -> Result<(Vec<Position>, Option<Mark>), SyncError> {
    let config_txn = view.factory_node(node)?.updated_txn;
    let mark = load_mark(view, node.id)?.filter(|m| m.config_txn == config_txn);
    let Some(mark) = mark else {
        return Ok((
            positions_of(view, node.id, source_files(view, settings)?)?,
            None,
        ));
    };
    let mut files: Vec<Node> = Vec::new();
    let mut seen = BTreeSet::new();
    for id in &mark.open {
        // Removed since (retention, say): nothing left to read.
        if !view.node_exists(*id)? {
            continue;
        }
        let path = view.path_of(*id)?;
        if seen.insert(*id) && View::selects(&settings.source, &path)? {
            files.push(Node {
                id: *id,
                kind: NodeKind::File,
                path,
            });
        }
    }
    for file in view.files_changed_since(mark.through_txn)? {
        if seen.insert(file.id) && View::selects(&settings.source, &file.path)? {
            files.push(file);
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((positions_of(view, node.id, files)?, Some(mark)))
}

fn positions_of(
    view: &View,
    factory_id: i64,
    files: Vec<Node>,
) -> Result<Vec<Position>, SyncError> {
    files
        .into_iter()
        .map(|file| {
            Ok(Position {
                cursor: load_cursor(view, factory_id, file.id)?,
                size: view.file_len(file.id)?,
                file,
            })
        })
        .collect()
}

/// Bytes of the source files past their cursors.
pub fn lag(view: &View, node: &Node, settings: &Settings) -> Result<u64, SyncError> {
    Ok(lag_of(&live_positions(view, node, settings)?.0))
}

/// Bytes of `positions` past their cursors.
pub fn lag_of(positions: &[Position]) -> u64 {
    positions.iter().map(Position::lag).sum()
}

/// Which of `files` node `node` has not read to the end (files outside its glob: none).
pub fn unsent(
    view: &View,
    node: &Node,
    settings: &Settings,
    files: &[Node],
) -> Result<Vec<bool>, SyncError> {
    files
        .iter()
        .map(|file| {
            Ok(View::selects(&settings.source, &file.path)?
                && load_cursor(view, node.id, file.id)?.offset < view.file_len(file.id)?)
        })
        .collect()
}

/// The files the source glob selects.
pub fn source_files(view: &View, settings: &Settings) -> Result<Vec<Node>, StoreError> {
    Ok(view
        .select(&settings.source)?
        .into_iter()
        .filter(|n| n.kind == NodeKind::File)
        .collect())
}

/// Per-file acknowledgement bookkeeping: the cursor moves over contiguous acknowledged batches.
struct Progress {
    cursor: u64,
    next_seq: u64,
    next_ack: u64,
    acked: BTreeMap<u64, u64>,
    /// The error the cursor records (from an earlier run until this one decides).
    error: Option<String>,
    /// A write of this file failed in this run.
    failed: bool,
    /// Scanning a line too long to keep: where it starts and how far it was scanned.
    scanning: Option<(u64, u64)>,
}

impl Progress {
    fn ack(&mut self, seq: u64, end: u64) {
        self.acked.insert(seq, end);
        while let Some(end) = self.acked.remove(&self.next_ack) {
            self.cursor = end;
            self.next_ack += 1;
        }
    }
}

/// File index, batch sequence number, end offset, newest entry time (Unix ms), outcome.
type Ack = (usize, u64, u64, Option<i64>, Result<(), SinkError>);

/// What a long-running stage watches while a sync runs (see [`crate::stage`]).
pub struct Observer {
    /// Seconds per acknowledged batch write, retries included.
    pub batch_seconds: Histogram,
    /// From an entry's own timestamp to MongoDB's acknowledgement of its document.
    pub entry_to_ack_seconds: Histogram,
    /// Complete lines read from the pond.
    pub lines_read: Counter,
    /// The newest entry timestamp (Unix ms) acknowledged so far.
    pub newest_acked_ms: AtomicI64,
}

/// The top-level field holding a document's entry time as a BSON date, if the format has one.
fn entry_time_field(format: &Format) -> Option<&str> {
    match format {
        Format::HlTrades | Format::HlFills => Some("time"),
        Format::HlFillsByBlock => Some("block_time"),
        Format::Jsonl(options) => options
            .timestamp
            .as_ref()
            .map(|(path, _)| path.text.as_str())
            .filter(|field| !field.contains('.')),
    }
}

fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The destination and the runtime it lives on: opened once per `sync`, or once per
/// long-running stage and reused by each of its steps.
pub struct Pipeline {
    runtime: tokio::runtime::Runtime,
    /// `None` on a dry run.
    sink: Option<Sink>,
    settings: Settings,
}

impl Pipeline {
    /// Starts the runtime and, unless `dry_run`, connects and creates the configured indexes.
    pub fn open(settings: &Settings, dry_run: bool, stats: &Stats) -> Result<Self, SyncError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(SyncError::Runtime)?;
        let sink = if dry_run {
            None
        } else {
            let connected = runtime.block_on(async {
                let sink = Sink::connect(settings).await?;
                if let Err(e) = sink.ensure_indexes(settings, stats).await {
                    sink.shutdown().await;
                    return Err(e);
                }
                Ok::<Sink, SinkError>(sink)
            })?;
            Some(connected)
        };
        Ok(Self {
            runtime,
            sink,
            settings: settings.clone(),
        })
    }

    /// Closes the connections, then the runtime.
    pub fn close(self) {
        if let Some(sink) = &self.sink {
            self.runtime.block_on(sink.shutdown());
        }
    }

    /// Stores every new complete line of the files node `node` must look at, reading from a
    /// snapshot; the cursors (and the node's [`Mark`]) are recorded through `committer` in short
    /// transactions, at the end and every [`CHECKPOINT_EVERY`] (a dry run records nothing).
    /// When `options.stop` turns true, reading stops at the next batch, and in-flight batches
    /// get `options.grace` to be acknowledged; what they cover stays behind the cursor
    /// otherwise. With a budget, reading also stops at the first batch boundary past its bytes
    /// or its deadline, and the report says there is `more`.
    pub fn sync(
        &self,
        committer: &mut Committer,
        node: &Node,
        stats: &Arc<Stats>,
        options: &RunOptions<'_>,
    ) -> Result<SyncReport, SyncError> {
        let settings = &self.settings;
        let dry_run = self.sink.is_none();
        let snapshot = committer.snapshot()?;
        let through_txn = snapshot.last_txn()?;
        let config_txn = snapshot.factory_node(node)?.updated_txn;
        let instance = snapshot.instance_id()?;
        let (positions, _) = live_positions(&snapshot, node, settings)?;
        let mut files = Files::new(positions);
        let mut run = Reading {
            factory_id: node.id,
            snapshot: &snapshot,
            instance: instance.as_deref(),
            options,
            stats,
            read_bytes: 0,
            more: false,
            last_checkpoint: std::time::Instant::now(),
            display: pond_factory::progress::Progress::new(
                format!("{}.{}: sending", settings.database, settings.collection),
                files.behind(),
            ),
            checkpoint_summary: format!(
                "mongo {}.{}: cursors (checkpoint)",
                settings.database, settings.collection
            ),
        };
        self.runtime
            .block_on(self.read(&mut run, committer, &mut files))?;
        let (more, read_bytes) = (run.more, run.read_bytes);
        drop(run);
        drop(snapshot);
        let errors = files.problems(more, read_bytes);
        let counts = Counts::of(stats);
        if !dry_run {
            let mark = Mark {
                through_txn,
                config_txn,
                open: files.open(),
            };
            let summary = counts.summary(settings);
            record(committer, node.id, &mut files, Some(mark), &summary)?;
        }
        Ok(SyncReport {
            inserted: counts.inserted,
            duplicates: counts.duplicates,
            dead_lettered: counts.dead_lettered,
            retries: stats.retries.load(Ordering::Relaxed),
            dry_run,
            files: files.report(dry_run),
            errors,
            more,
        })
    }

    /// Reads every file of `files` from its cursor and sends its lines, then waits for the
    /// batches in flight (see [`Pipeline::sync`]).
    async fn read(
        &self,
        run: &mut Reading<'_>,
        committer: &mut Committer,
        files: &mut Files,
    ) -> Result<(), SyncError> {
        let (ack_tx, acks) = tokio::sync::mpsc::unbounded_channel::<Ack>();
        let mut flight = InFlight {
            writer: Writer {
                sink: self.sink.clone(),
                slots: Arc::new(tokio::sync::Semaphore::new(self.settings.max_in_flight)),
                acks: ack_tx,
                stats: run.stats.clone(),
                observer: run.options.observer,
            },
            acks,
            failed: false,
        };
        for fi in 0..files.nodes.len() {
            let halt = self
                .read_file(run, committer, files, fi, &mut flight)
                .await?;
            if halt || flight.failed {
                break;
            }
        }
        let InFlight {
            writer,
            mut acks,
            mut failed,
        } = flight;
        drop(writer);
        run.display.finish();
        // Wait for the batches in flight; once a stop is requested (before or during this
        // wait), give them `grace` at most.
        let grace = run.options.grace;
        let mut stop_seen: Option<std::time::Instant> = None;
        loop {
            match tokio::time::timeout(Duration::from_millis(100), acks.recv()).await {
                Ok(Some(ack)) => {
                    handle_ack(ack, &mut files.progress, &mut failed, run.options.observer)
                }
                Ok(None) => break,
                Err(_) => {}
            }
            if (run.options.stop)()
                && stop_seen
                    .get_or_insert_with(std::time::Instant::now)
                    .elapsed()
                    >= grace
            {
                tracing::warn!(
                    "in-flight batches not acknowledged within the {grace:?} grace period; \
                     their lines stay behind the cursor and are sent again on the next start"
                );
                break;
            }
        }
        Ok(())
    }

    /// Reads file `fi` from its cursor (or from where a long line's scan stopped), sending its
    /// lines in batches. Returns whether reading must stop (a stop request, or the budget);
    /// a failed write sets `flight.failed` (the caller stops too).
    async fn read_file(
        &self,
        run: &mut Reading<'_>,
        committer: &mut Committer,
        files: &mut Files,
        fi: usize,
        flight: &mut InFlight<'_>,
    ) -> Result<bool, SyncError> {
        let writer = &flight.writer;
        let settings = &self.settings;
        let observer = run.options.observer;
        let size = files.sizes[fi];
        // A line too long to keep, scanned by an earlier run: go on from there.
        let cursor = files.progress[fi].cursor;
        let resume = files.progress[fi]
            .scanning
            .filter(|&(line, scanned)| line == cursor && scanned > line);
        let start = resume.map_or(cursor, |(_, scanned)| scanned);
        if start >= size {
            return Ok(false);
        }
        let file = &SourceFile::new(
            files.nodes[fi].id,
            files.nodes[fi].path.to_string(),
            run.instance,
        );
        let mut reader = run.snapshot.read_range(file.node, start, size)?;
        let mut lines = match resume {
            Some((line, scanned)) => LineSplitter::resume(
                line,
                scanned,
                run.snapshot
                    .read_bytes(file.node, line, line + DEAD_LETTER_RAW as u64)?,
            ),
            None => LineSplitter::new(start),
        };
        let time_field = observer.and(entry_time_field(&settings.format));
        let mut batch = new_batch(settings.batch_size);
        let mut entry_ms = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut halt = false;
        loop {
            let n = reader.read(&mut buf).map_err(|source| SyncError::Read {
                path: file.pond_path.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            run.display.add(n as u64);
            run.read_bytes += n as u64;
            lines.push(&buf[..n]);
            while let Some(item) = lines.next_item() {
                let end = match item {
                    Item::Line(offset, line) => {
                        let docs_before = batch.docs.len();
                        add_line(settings, file, offset, line, &mut batch);
                        if let Some(field) = time_field {
                            entry_ms.extend(
                                batch.docs[docs_before..]
                                    .iter()
                                    .filter_map(|doc| doc.get_datetime(field).ok())
                                    .map(|time| time.timestamp_millis()),
                            );
                        }
                        offset + line.len() as u64 + 1
                    }
                    Item::TooLong { offset, len, head } => {
                        add_too_long(file, offset, len, &head, &mut batch);
                        offset + len + 1
                    }
                };
                if batch.docs.len() + batch.dead.len() >= settings.batch_size {
                    let full = std::mem::replace(&mut batch, new_batch(settings.batch_size));
                    let times = std::mem::take(&mut entry_ms);
                    writer
                        .send(fi, end, full, times, &mut files.progress[fi], file)
                        .await;
                }
                while let Ok(ack) = flight.acks.try_recv() {
                    handle_ack(ack, &mut files.progress, &mut flight.failed, observer);
                }
                if flight.failed {
                    return Ok(true);
                }
            }
            if writer.sink.is_some() && run.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                run.last_checkpoint = std::time::Instant::now();
                record(
                    committer,
                    run.factory_id,
                    files,
                    None,
                    &run.checkpoint_summary,
                )?;
            }
            // Checked per chunk read, not per batch: lines that make no documents (empty
            // `events` blocks) never fill a batch.
            if (run.options.stop)() {
                halt = true;
                break;
            }
            if run.options.budget.is_some_and(|b| {
                run.read_bytes >= b.bytes || std::time::Instant::now() >= b.deadline
            }) {
                run.more = true;
                halt = true;
                break;
            }
        }
        if let Some(observer) = observer {
            observer.lines_read.inc_by(lines.count);
        }
        let progress = &mut files.progress[fi];
        progress.scanning = lines.scanning();
        if !batch.docs.is_empty() || !batch.dead.is_empty() {
            writer
                .send(fi, lines.consumed(), batch, entry_ms, progress, file)
                .await;
        } else if lines.consumed() > progress.cursor && progress.next_seq == progress.next_ack {
            // Only lines that produced nothing (an empty `events` block): nothing to wait for.
            progress.cursor = lines.consumed();
        }
        Ok(halt)
    }
}

/// The batches of one [`Pipeline::sync`] in flight: the writer, the acknowledgements coming
/// back, and whether a write failed.
struct InFlight<'o> {
    writer: Writer<'o>,
    acks: tokio::sync::mpsc::UnboundedReceiver<Ack>,
    failed: bool,
}

/// What one [`Pipeline::sync`] carries while it reads.
struct Reading<'r> {
    factory_id: i64,
    snapshot: &'r View,
    instance: Option<&'r str>,
    options: &'r RunOptions<'r>,
    stats: &'r Arc<Stats>,
    /// Source bytes read so far.
    read_bytes: u64,
    /// Reading stopped at the budget with lines left.
    more: bool,
    last_checkpoint: std::time::Instant,
    display: pond_factory::progress::Progress,
    checkpoint_summary: String,
}

/// Applies one acknowledgement: the file's cursor moves over the contiguous acknowledged
/// prefix, or the file is marked failed with the error.
fn handle_ack(
    (fi, seq, end, newest, result): Ack,
    progress: &mut [Progress],
    failed: &mut bool,
    observer: Option<&Observer>,
) {
    match result {
        Ok(()) => {
            progress[fi].ack(seq, end);
            if let (Some(observer), Some(newest)) = (observer, newest) {
                observer
                    .newest_acked_ms
                    .fetch_max(newest, Ordering::Relaxed);
            }
        }
        Err(e) => {
            progress[fi].error = Some(e.to_string());
            progress[fi].failed = true;
            *failed = true;
        }
    }
}

/// The files one [`Pipeline::sync`] looks at, and where it stands in each.
struct Files {
    nodes: Vec<Node>,
    sizes: Vec<u64>,
    progress: Vec<Progress>,
    /// The cursors as last recorded in the pond.
    stored: Vec<Cursor>,
    /// Each file's cursor and long-line scan when the run started.
    starting: Vec<(u64, Option<(u64, u64)>)>,
}

impl Files {
    fn new(positions: Vec<Position>) -> Self {
        let mut files = Files {
            nodes: Vec::with_capacity(positions.len()),
            sizes: Vec::with_capacity(positions.len()),
            progress: Vec::with_capacity(positions.len()),
            stored: Vec::with_capacity(positions.len()),
            starting: Vec::with_capacity(positions.len()),
        };
        for position in positions {
            let scanning = position
                .cursor
                .long_line_scanned
                .map(|scanned| (position.cursor.offset, scanned));
            files.starting.push((position.cursor.offset, scanning));
            files.progress.push(Progress {
                cursor: position.cursor.offset,
                next_seq: 0,
                next_ack: 0,
                acked: BTreeMap::new(),
                error: position.cursor.last_error.clone(),
                failed: false,
                scanning,
            });
            files.sizes.push(position.size);
            files.stored.push(position.cursor);
            files.nodes.push(position.file);
        }
        files
    }

    /// Bytes past the cursors when the run started.
    fn behind(&self) -> u64 {
        self.sizes
            .iter()
            .zip(&self.starting)
            .map(|(size, (cursor, _))| size.saturating_sub(*cursor))
            .sum()
    }

    /// One problem per file whose writes failed (what failed, and where its cursor stays);
    /// and, for a run that stopped at its budget having moved nothing (it would do the same
    /// again and again), one saying so, so the stage shows as failing instead of spinning.
    fn problems(&self, more: bool, read_bytes: u64) -> Vec<Problem> {
        let mut problems: Vec<Problem> = self
            .nodes
            .iter()
            .zip(&self.progress)
            .filter(|(_, p)| p.failed)
            .map(|(file, p)| {
                Problem::new(
                    &file.path,
                    format!(
                        "{}; cursor kept at offset {}",
                        p.error.as_deref().unwrap_or("write failed"),
                        p.cursor
                    ),
                )
            })
            .collect();
        let moved = self
            .progress
            .iter()
            .zip(&self.starting)
            .any(|(p, (cursor, scan))| p.cursor != *cursor || p.scanning != *scan);
        if more && !moved && problems.is_empty() {
            let stuck = self
                .nodes
                .iter()
                .zip(&self.progress)
                .zip(&self.sizes)
                .find(|((_, p), size)| p.cursor < **size)
                .map_or_else(String::new, |((f, p), _)| {
                    format!("{} at offset {}", f.path, p.cursor)
                });
            problems.push(Problem::new(
                stuck,
                format!(
                    "read {read_bytes} bytes within the run's budget without storing a line or \
                     moving a cursor"
                ),
            ));
        }
        problems
    }

    /// The files left with bytes past their cursor.
    fn open(&self) -> Vec<i64> {
        self.nodes
            .iter()
            .zip(&self.progress)
            .zip(&self.sizes)
            .filter(|((_, p), size)| p.cursor < **size)
            .map(|((f, _), _)| f.id)
            .collect()
    }

    /// The files as the report shows them (a dry run moved no cursor).
    fn report(&self, dry_run: bool) -> Vec<FileReport> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(fi, f)| FileReport {
                path: f.path.to_string(),
                cursor: if dry_run {
                    self.starting[fi].0
                } else {
                    self.progress[fi].cursor
                },
                size: self.sizes[fi],
            })
            .collect()
    }
}

/// Documents by outcome, as a run's summary counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub inserted: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
}

impl Counts {
    /// The counts in `stats`.
    pub fn of(stats: &Stats) -> Self {
        Self {
            inserted: stats.inserted.load(Ordering::Relaxed),
            duplicates: stats.duplicates.load(Ordering::Relaxed),
            dead_lettered: stats.dead_lettered.load(Ordering::Relaxed),
        }
    }

    /// The transaction summary (`mongo db.coll: 5 inserted, 0 duplicates, 1 dead-lettered`).
    pub fn summary(&self, settings: &Settings) -> String {
        format!(
            "mongo {}.{}: {} inserted, {} duplicates, {} dead-lettered",
            settings.database,
            settings.collection,
            self.inserted,
            self.duplicates,
            self.dead_lettered
        )
    }
}

impl SyncReport {
    /// Bytes of the files past their cursors after the run.
    pub fn behind(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.size.saturating_sub(f.cursor))
            .sum()
    }

    /// The transaction summary of the run.
    pub fn summary(&self, settings: &Settings) -> String {
        Counts {
            inserted: self.inserted,
            duplicates: self.duplicates,
            dead_lettered: self.dead_lettered,
        }
        .summary(settings)
    }
}

/// What bounds one run of [`Pipeline::sync`].
pub struct RunOptions<'a> {
    /// Turns true when reading should stop.
    pub stop: &'a dyn Fn() -> bool,
    /// How long in-flight batches may take once a stop is requested.
    pub grace: Duration,
    /// A long-running stage's work budget per run.
    pub budget: Option<Budget>,
    /// Metrics of a long-running stage.
    pub observer: Option<&'a Observer>,
}

/// Records, in one short transaction, the cursors of `files` that moved or whose error
/// changed since they were last recorded, and `mark` when given. Files removed meanwhile are
/// skipped.
fn record(
    committer: &mut Committer,
    factory_id: i64,
    files: &mut Files,
    mark: Option<Mark>,
    summary: &str,
) -> Result<(), SyncError> {
    let changes: Vec<(usize, Cursor)> = files
        .progress
        .iter()
        .enumerate()
        .filter_map(|(fi, p)| {
            let cursor = Cursor {
                offset: p.cursor,
                last_error: if p.failed { p.error.clone() } else { None },
                // Only while every line before the long one is stored.
                long_line_scanned: p
                    .scanning
                    .filter(|&(line, _)| line == p.cursor)
                    .map(|(_, scanned)| scanned),
            };
            (cursor != files.stored[fi]).then_some((fi, cursor))
        })
        .collect();
    if changes.is_empty() && mark.is_none() {
        return Ok(());
    }
    let nodes = &files.nodes;
    committer
        .commit(summary, |txn| {
            for (fi, cursor) in &changes {
                let file = &nodes[*fi];
                if txn.node_exists(file.id)? {
                    save_cursor(txn, factory_id, file.id, cursor)?;
                }
            }
            if let Some(mut mark) = mark {
                let mut open = Vec::with_capacity(mark.open.len());
                for id in mark.open {
                    if txn.node_exists(id)? {
                        open.push(id);
                    }
                }
                open.sort_unstable();
                mark.open = open;
                if load_mark(txn, factory_id)?.as_ref() != Some(&mark) {
                    save_mark(txn, factory_id, &mark)?;
                }
            }
            Ok(())
        })
        .map_err(SyncError::Commit)?;
    for (fi, cursor) in changes {
        files.stored[fi] = cursor;
    }
    Ok(())
}

/// Runs one sync of node `node` (opening and closing the destination).
pub fn sync(
    committer: &mut Committer,
    node: &Node,
    settings: &Settings,
    dry_run: bool,
) -> Result<SyncReport, SyncError> {
    let stats = Arc::new(Stats::default());
    let pipeline = Pipeline::open(settings, dry_run, &stats)?;
    let report = pipeline.sync(
        committer,
        node,
        &stats,
        &RunOptions {
            stop: &|| false,
            grace: Duration::ZERO,
            budget: None,
            observer: None,
        },
    );
    pipeline.close();
    report
}

fn new_batch(capacity: usize) -> Batch {
    Batch {
        docs: Vec::with_capacity(capacity),
        origins: Vec::with_capacity(capacity),
        raw: Vec::new(),
        dead: Vec::new(),
    }
}

/// A line longer than the longest kept goes to the batch as a dead letter, by its length.
fn add_too_long(file: &SourceFile, offset: u64, len: u64, head: &[u8], batch: &mut Batch) {
    let origin = Origin {
        offset,
        line_len: len,
        raw: 0..0,
    };
    batch.dead.push(dead_letter(
        file,
        &origin,
        head,
        0,
        &format!(
            "line of {len} bytes is longer than the {MAX_LINE} bytes a MongoDB document can hold \
             (its first {} bytes are kept here)",
            head.len()
        ),
    ));
}

/// Transforms one line into the batch: documents, or a dead letter with the reason.
fn add_line(settings: &Settings, file: &SourceFile, offset: u64, line: &[u8], batch: &mut Batch) {
    let head = &line[..line.len().min(DEAD_LETTER_RAW)];
    match settings.format.transform(
        line,
        LineAt {
            source: &file.id_prefix,
            offset,
        },
    ) {
        Ok(docs) if docs.is_empty() => {}
        Ok(docs) => {
            let start = batch.raw.len();
            batch.raw.extend_from_slice(head);
            let origin = Origin {
                offset,
                line_len: line.len() as u64,
                raw: start..batch.raw.len(),
            };
            for doc in docs {
                batch.docs.push(doc);
                batch.origins.push(origin.clone());
            }
        }
        Err(reject) => {
            let origin = Origin {
                offset,
                line_len: line.len() as u64,
                raw: 0..0,
            };
            batch
                .dead
                .push(dead_letter(file, &origin, head, 0, &reject.0));
        }
    }
}

/// Hands batches to writer tasks, at most `max_in_flight` at once.
struct Writer<'o> {
    /// `None` on a dry run: batches are counted, not sent.
    sink: Option<Sink>,
    slots: Arc<tokio::sync::Semaphore>,
    acks: tokio::sync::mpsc::UnboundedSender<Ack>,
    stats: Arc<Stats>,
    observer: Option<&'o Observer>,
}

impl Writer<'_> {
    /// Sends the batch of file `fi` ending at byte `end`; waits while all slots are busy, so the
    /// reader slows down and nothing is dropped or buffered without limit. `entry_ms` are the
    /// entry times of its documents, for the latency metrics.
    async fn send(
        &self,
        fi: usize,
        end: u64,
        batch: Batch,
        entry_ms: Vec<i64>,
        progress: &mut Progress,
        file: &SourceFile,
    ) {
        let seq = progress.next_seq;
        progress.next_seq += 1;
        let Some(sink) = self.sink.clone() else {
            self.stats
                .inserted
                .fetch_add(batch.docs.len() as u64, Ordering::Relaxed);
            self.stats
                .dead_lettered
                .fetch_add(batch.dead.len() as u64, Ordering::Relaxed);
            let _ = self.acks.send((fi, seq, end, None, Ok(())));
            return;
        };
        // The semaphore is never closed, so acquiring only waits.
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let acks = self.acks.clone();
        let stats = self.stats.clone();
        let file = file.clone();
        let timing = self.observer.map(|o| {
            (
                o.batch_seconds.clone(),
                o.entry_to_ack_seconds.clone(),
                std::time::Instant::now(),
            )
        });
        let newest = entry_ms.iter().copied().max();
        tokio::spawn(async move {
            let result = sink.write(batch, &file, &stats).await;
            drop(permit);
            if let (Ok(()), Some((batch_seconds, entry_to_ack, started))) = (&result, timing) {
                batch_seconds.observe(started.elapsed().as_secs_f64());
                let now = unix_ms_now();
                for ms in &entry_ms {
                    entry_to_ack.observe((now - ms).max(0) as f64 / 1000.0);
                }
            }
            let _ = acks.send((fi, seq, end, newest, result));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cursor moves only over batches acknowledged without a gap.
    #[test]
    fn cursor_advances_over_the_contiguous_acknowledged_prefix() {
        let mut p = Progress {
            cursor: 0,
            next_seq: 3,
            next_ack: 0,
            acked: BTreeMap::new(),
            error: None,
            failed: false,
            scanning: None,
        };
        p.ack(1, 20);
        assert_eq!(p.cursor, 0);
        p.ack(2, 30);
        assert_eq!(p.cursor, 0);
        p.ack(0, 10);
        assert_eq!(p.cursor, 30);
    }
}
