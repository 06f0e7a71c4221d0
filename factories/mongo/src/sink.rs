//! Writing batches to MongoDB exactly once: unordered `insert_many`, duplicate keys counted as
//! already stored, transient failures retried with capped exponential backoff and jitter until a
//! deadline, permanent per-document failures dead-lettered.
//!
//! Every document has a deterministic `_id`, so a retry of a batch that partly succeeded (or a
//! re-run after a crash) only meets E11000 for what is already there.

use crate::config::Settings;
use mongodb::bson::{Binary, Bson, Document, RawDocumentBuf, doc, spec::BinarySubtype};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, CollectionOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, IndexModel};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Server error codes that mean "try again": shutdown, elections, network, pool resets.
const TRANSIENT_CODES: &[i32] = &[
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 64, 112, 133, 134, 150, 152,
    234,
];
const DUPLICATE_KEY: i32 = 11000;
/// The least time one write attempt may take before it is abandoned and retried.
const MIN_ATTEMPT_TIME: Duration = Duration::from_secs(10);
/// Bytes of a rejected line kept in its dead letter.
pub const DEAD_LETTER_RAW: usize = 4096;

/// Why writing stopped: one line each, naming the server, the root cause (see [`root_cause`])
/// and what was done.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("MongoDB at {uri}: cannot connect: {cause}")]
    Connect { uri: String, cause: String },
    #[error(
        "MongoDB at {host}: {cause}; retried {retries} time(s) over {secs} s, then gave up (retry_deadline_secs)"
    )]
    GaveUp {
        host: String,
        cause: String,
        retries: u32,
        secs: u64,
    },
    #[error("MongoDB at {host} refused the write: {cause}")]
    Fatal { host: String, cause: String },
}

/// Counters reported by `sync`.
#[derive(Debug, Default)]
pub struct Stats {
    pub inserted: AtomicU64,
    pub duplicates: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub retries: AtomicU64,
}

/// Where a document came from, for dead letters.
#[derive(Debug, Clone)]
pub struct Origin {
    pub offset: u64,
    pub line_len: u64,
    /// The first [`DEAD_LETTER_RAW`] bytes of the line, in [`Batch::raw`].
    pub raw: std::ops::Range<usize>,
}

/// One batch: documents and dead letters from consecutive lines of one file.
#[derive(Debug)]
pub struct Batch {
    pub docs: Vec<RawDocumentBuf>,
    pub origins: Vec<Origin>,
    /// The lines' first bytes back to back (one buffer per batch, not one per line), kept for
    /// the dead letter of a document MongoDB refuses.
    pub raw: Vec<u8>,
    pub dead: Vec<Document>,
}

/// A source file as documents and dead letters name it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub node: i64,
    pub pond_path: String,
    /// `<pond instance id>:<node id>` (or `<node id>` in a pond from an older build): what
    /// position ids and dead-letter ids start with, unique across ponds.
    pub id_prefix: String,
}

impl SourceFile {
    /// File `node` at `pond_path` of the pond with instance id `instance` (`None`: a pond from
    /// an older build, whose ids keep their old form).
    pub fn new(node: i64, pond_path: String, instance: Option<&str>) -> Self {
        let id_prefix = match instance {
            Some(instance) => format!("{instance}:{node}"),
            None => node.to_string(),
        };
        Self {
            node,
            pond_path,
            id_prefix,
        }
    }
}

/// A dead-letter document for the line at `origin` of `file`; `raw` is the line's start.
pub fn dead_letter(
    file: &SourceFile,
    origin: &Origin,
    raw: &[u8],
    part: usize,
    reason: &str,
) -> Document {
    let raw = match std::str::from_utf8(raw) {
        Ok(text) => Bson::String(text.to_string()),
        Err(_) => Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: raw.to_vec(),
        }),
    };
    doc! {
        "_id": format!("{}:{}:{part}", file.id_prefix, origin.offset),
        "pond_path": &file.pond_path,
        "node": file.node,
        "offset": origin.offset as i64,
        "line_len": origin.line_len as i64,
        "raw": raw,
        "reason": reason,
    }
}

/// The destination collections.
#[derive(Clone)]
pub struct Sink {
    client: Client,
    main: Collection<RawDocumentBuf>,
    dead: Collection<Document>,
    /// How long one write keeps retrying, counted from its first failure.
    retry_deadline: Duration,
    /// The servers of the connection string, for messages (`db1:27017,db2:27017`).
    host: String,
}

impl Sink {
    /// Connects (lazily: the first write finds the server) and prepares the collections.
    pub async fn connect(settings: &Settings) -> Result<Self, SinkError> {
        let connect_error = |e: Error| SinkError::Connect {
            uri: redact(&settings.uri),
            cause: root_cause(&e),
        };
        let mut options = ClientOptions::parse(&settings.uri)
            .await
            .map_err(connect_error)?;
        let host = options
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        options.app_name.get_or_insert_with(|| "pond".to_string());
        // Fail fast inside one attempt; the retry loop below owns the overall deadline.
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(3).min(settings.retry_deadline));
        options
            .connect_timeout
            .get_or_insert(Duration::from_secs(3).min(settings.retry_deadline));
        let client = Client::with_options(options).map_err(connect_error)?;
        let write_concern = if settings.majority {
            WriteConcern::majority()
        } else {
            WriteConcern::nodes(settings.write_nodes)
        };
        let collection_options = CollectionOptions::builder()
            .write_concern(write_concern)
            .build();
        let db = client.database(&settings.database);
        Ok(Self {
            client: client.clone(),
            main: db.collection_with_options(&settings.collection, collection_options.clone()),
            dead: db.collection_with_options(&settings.dead_letter, collection_options),
            retry_deadline: settings.retry_deadline,
            host,
        })
    }

    /// Closes the connections once every write is done, so that the driver's background tasks
    /// end before the runtime does.
    pub async fn shutdown(&self) {
        self.client.clone().shutdown().await;
    }

    /// Creates the configured indexes (idempotent), retrying transient errors.
    pub async fn ensure_indexes(
        &self,
        settings: &Settings,
        stats: &Stats,
    ) -> Result<(), SinkError> {
        for index in &settings.indexes {
            let options = IndexOptions::builder()
                .unique(index.unique.then_some(true))
                .name(index.name.clone())
                .build();
            let model = IndexModel::builder()
                .keys(index.keys.clone())
                .options(options)
                .build();
            self.retry(stats, || async {
                self.main.create_index(model.clone()).await.map(|_| ())
            })
            .await?;
        }
        Ok(())
    }

    /// Stores a batch: documents, then dead letters. Returns once MongoDB acknowledged all of
    /// them (or counted them as already stored), or the deadline passed.
    pub async fn write(
        &self,
        batch: Batch,
        file: &SourceFile,
        stats: &Stats,
    ) -> Result<(), SinkError> {
        let mut pending: Vec<usize> = (0..batch.docs.len()).collect();
        let mut dead = batch.dead;
        let mut attempt = 0u32;
        let mut failing_since: Option<Instant> = None;
        while !pending.is_empty() {
            let docs: Vec<&RawDocumentBuf> = pending.iter().map(|&i| &batch.docs[i]).collect();
            // A server that accepts the write and never answers (paused, or packets dropped)
            // would otherwise hold this batch, and everything waiting on it, forever.
            let attempt_limit = self.retry_deadline.max(MIN_ATTEMPT_TIME);
            let answer =
                tokio::time::timeout(attempt_limit, self.main.insert_many(docs).ordered(false))
                    .await;
            let error = match answer {
                Ok(Ok(_)) => {
                    stats
                        .inserted
                        .fetch_add(pending.len() as u64, Ordering::Relaxed);
                    break;
                }
                Ok(Err(e)) => e,
                // Counted as an I/O error: transient, so the batch is sent again (duplicates
                // absorb what the server did apply).
                Err(_) => Error::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer to insert_many within {} s",
                        attempt_limit.as_secs()
                    ),
                )),
            };
            let mut retry_all = false;
            let mut retry = Vec::new();
            match error.kind.as_ref() {
                ErrorKind::InsertMany(failure) => {
                    let write_errors = failure.write_errors.clone().unwrap_or_default();
                    let mut failed = vec![false; pending.len()];
                    for we in &write_errors {
                        let Some(slot) = failed.get_mut(we.index) else {
                            continue;
                        };
                        *slot = true;
                        let doc_index = pending[we.index];
                        if is_id_duplicate(we.code, &we.message) {
                            stats.duplicates.fetch_add(1, Ordering::Relaxed);
                        } else if TRANSIENT_CODES.contains(&we.code) {
                            retry.push(doc_index);
                        } else {
                            let origin = &batch.origins[doc_index];
                            dead.push(dead_letter(
                                file,
                                origin,
                                batch.raw.get(origin.raw.clone()).unwrap_or_default(),
                                doc_index,
                                &format!(
                                    "MongoDB rejected the document: code {}: {}",
                                    we.code, we.message
                                ),
                            ));
                        }
                    }
                    let ok = failed.iter().filter(|f| !**f).count() as u64;
                    stats.inserted.fetch_add(ok, Ordering::Relaxed);
                    if failure.write_concern_error.is_some() {
                        // Applied but not acknowledged at the requested level: write it again
                        // (the retry meets duplicates) until the concern is met.
                        retry_all = true;
                        stats.inserted.fetch_sub(ok, Ordering::Relaxed);
                    }
                }
                _ if is_transient(&error) => retry_all = true,
                _ => return Err(self.fatal(&error)),
            }
            if !retry_all && retry.is_empty() {
                break;
            }
            if !retry_all {
                pending = retry;
            }
            attempt += 1;
            stats.retries.fetch_add(1, Ordering::Relaxed);
            self.backoff(
                attempt,
                &error,
                *failing_since.get_or_insert_with(Instant::now),
            )
            .await?;
        }
        if !dead.is_empty() {
            let count = dead.len() as u64;
            let mut attempt = 0u32;
            let mut failing_since: Option<Instant> = None;
            loop {
                match self.dead.insert_many(&dead).ordered(false).await {
                    Ok(_) => break,
                    Err(e) => {
                        let only_duplicates = matches!(e.kind.as_ref(), ErrorKind::InsertMany(f)
                            if f.write_concern_error.is_none()
                                && f.write_errors.as_ref().is_some_and(|w| w.iter().all(|we| is_id_duplicate(we.code, &we.message))));
                        if only_duplicates {
                            break;
                        }
                        if !is_transient(&e) && !matches!(e.kind.as_ref(), ErrorKind::InsertMany(_))
                        {
                            return Err(self.fatal(&e));
                        }
                        attempt += 1;
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                        self.backoff(attempt, &e, *failing_since.get_or_insert_with(Instant::now))
                            .await?;
                    }
                }
            }
            stats.dead_lettered.fetch_add(count, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn retry<F, Fut>(&self, stats: &Stats, mut op: F) -> Result<(), SinkError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = mongodb::error::Result<()>>,
    {
        let mut attempt = 0;
        let started = Instant::now();
        loop {
            match op().await {
                Ok(()) => return Ok(()),
                Err(e) if is_transient(&e) => {
                    attempt += 1;
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    self.backoff(attempt, &e, started).await?;
                }
                Err(e) => return Err(self.fatal(&e)),
            }
        }
    }

    /// Sleeps 100 ms x 2^attempt (capped at 5 s) with +-50% jitter, or gives up once the
    /// operation has been failing for `retry_deadline` (since `failing_since`).
    async fn backoff(
        &self,
        attempt: u32,
        last: &Error,
        failing_since: Instant,
    ) -> Result<(), SinkError> {
        let base = Duration::from_millis(100)
            .saturating_mul(1 << attempt.min(6))
            .min(Duration::from_secs(5));
        let jitter = 0.5 + (jitter_seed() % 1000) as f64 / 1000.0;
        let pause = base.mul_f64(jitter);
        let deadline = failing_since + self.retry_deadline;
        let now = Instant::now();
        if now >= deadline {
            return Err(SinkError::GaveUp {
                host: self.host.clone(),
                cause: root_cause(last),
                retries: attempt.saturating_sub(1),
                secs: failing_since.elapsed().as_secs(),
            });
        }
        tracing::warn!(
            attempt,
            "MongoDB at {} failed, retrying in {pause:?}: {}",
            self.host,
            root_cause(last)
        );
        tokio::time::sleep(pause.min(deadline - now)).await;
        Ok(())
    }
}

impl Sink {
    fn fatal(&self, error: &Error) -> SinkError {
        SinkError::Fatal {
            host: self.host.clone(),
            cause: root_cause(error),
        }
    }
}

/// What went wrong, in a few words: `authentication failed`, `connection refused`, `no answer
/// within 10 s`, a server's error code and message; never the driver's topology dump.
pub fn root_cause(error: &Error) -> String {
    match error.kind.as_ref() {
        ErrorKind::Authentication { message, .. } => {
            format!("authentication failed ({})", short(message))
        }
        ErrorKind::Io(io) => io_cause(io),
        ErrorKind::ServerSelection { message, .. } => selection_cause(message),
        ErrorKind::Command(command) if command.code == 18 => "authentication failed".to_string(),
        ErrorKind::Command(command) if command.code == 13 => {
            format!("not authorized: {}", short(&command.message))
        }
        ErrorKind::Command(command) => {
            format!(
                "error {} ({}): {}",
                command.code,
                command.code_name,
                short(&command.message)
            )
        }
        ErrorKind::Write(WriteFailure::WriteError(we)) => {
            format!("write error {}: {}", we.code, short(&we.message))
        }
        ErrorKind::Write(WriteFailure::WriteConcernError(wc)) => {
            format!("write concern not met: {}", short(&wc.message))
        }
        ErrorKind::InsertMany(failure) => {
            match (&failure.write_concern_error, &failure.write_errors) {
                (Some(wc), _) => format!("write concern not met: {}", short(&wc.message)),
                (None, Some(errors)) if !errors.is_empty() => format!(
                    "{} write error(s), the first {}: {}",
                    errors.len(),
                    errors[0].code,
                    short(&errors[0].message)
                ),
                _ => short(&error.to_string()),
            }
        }
        ErrorKind::ConnectionPoolCleared { message, .. } => {
            format!("connection lost ({})", short(message))
        }
        ErrorKind::DnsResolve { message, .. } => format!("DNS lookup failed: {}", short(message)),
        ErrorKind::InvalidArgument { message, .. } => {
            format!("invalid connection string or option: {}", short(message))
        }
        _ => short(&error.to_string()),
    }
}

fn io_cause(io: &std::io::Error) -> String {
    use std::io::ErrorKind as Io;
    match io.kind() {
        Io::ConnectionRefused => "connection refused".to_string(),
        Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof => {
            "connection lost".to_string()
        }
        Io::TimedOut => short(&io.to_string()),
        _ => short(&io.to_string()),
    }
}

/// The cause inside a server selection failure (which carries a dump of the topology).
fn selection_cause(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("scram") || lower.contains("authentication failed") {
        "authentication failed".to_string()
    } else if lower.contains("connection refused") {
        "connection refused".to_string()
    } else if lower.contains("timed out") || lower.contains("no available servers") {
        "no server answered in time".to_string()
    } else {
        short(message.split(" Topology:").next().unwrap_or(message))
    }
}

/// The first line of `text`, at most 160 characters.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text).trim();
    if line.chars().count() > 160 {
        format!("{}...", line.chars().take(160).collect::<String>())
    } else {
        line.to_string()
    }
}

/// E11000 on `_id`: the document is already stored. A clash on another unique index is a
/// permanent rejection of this document (dead-lettered), not a duplicate.
fn is_id_duplicate(code: i32, message: &str) -> bool {
    code == DUPLICATE_KEY
        && (message.contains("index: _id_ ") || message.contains("dup key: { _id:"))
}

fn is_transient(error: &Error) -> bool {
    if error.contains_label("RetryableWriteError")
        || error.contains_label("TransientTransactionError")
    {
        return true;
    }
    match error.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. } => true,
        ErrorKind::Command(command) => TRANSIENT_CODES.contains(&command.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        ErrorKind::Write(WriteFailure::WriteError(we)) => TRANSIENT_CODES.contains(&we.code),
        ErrorKind::InsertMany(failure) => failure.write_concern_error.is_some(),
        _ => false,
    }
}

/// A cheap varying number for jitter (not a timestamp of any stored data).
fn jitter_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7
}

/// The URI without its password, for messages.
pub fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &uri[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &uri[..scheme + 3], &uri[at..])
        }
        _ => uri.to_string(),
    }
}
