//! The `mongo` config, validated once into [`Settings`].

use crate::format::{FieldPath, Format, IdSpec, Jsonl, TimeFormat};
use mongodb::bson::Document;
use pond_factory::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// The config file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pond glob of the files to tail, e.g. `logs/hl/node_trades/**`.
    pub source: String,
    /// Where documents go.
    pub mongodb: MongoConfig,
    /// `jsonl`, `hyperliquid/node_trades`, `hyperliquid/node_fills` or
    /// `hyperliquid/node_fills_by_block`.
    pub format: String,
    /// `jsonl` only: `position` (default: the pond's instance id, the file's node id and the
    /// line's byte offset), `{fields: [paths]}` (a natural key), or `line` (the line's own
    /// `_id`). With `position` or fields, a line that has its own `_id` is dead-lettered.
    #[serde(default)]
    pub id: Option<IdConfig>,
    /// `jsonl` only: read MongoDB extended JSON (`{"$oid": ...}`, `{"$date": ...}`,
    /// `{"$numberDecimal": ...}`); default false: plain JSON, `$` keys stored as keys.
    #[serde(default)]
    pub extended_json: bool,
    /// `jsonl` only: the entry's own time, stored as a BSON date plus `<field>_ns`.
    #[serde(default)]
    pub timestamp: Option<TimestampConfig>,
    /// `jsonl` only: fields holding decimal strings to store as exact Decimal128.
    #[serde(default)]
    pub decimals: Vec<String>,
    /// Documents per `insert_many` (default 1000).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Batches in flight at once (default 4); the reader waits when all are busy.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Collection for lines that cannot be stored (default `<collection>_rejects`).
    #[serde(default)]
    pub dead_letter: Option<String>,
    /// Indexes created (idempotently) before each sync.
    #[serde(default)]
    pub indexes: Vec<IndexConfig>,
    /// How long `sync` keeps retrying transient errors before it gives up (default 120 s).
    #[serde(default = "default_deadline")]
    pub retry_deadline_secs: u64,
}

fn default_batch_size() -> usize {
    1000
}
fn default_in_flight() -> usize {
    4
}
fn default_deadline() -> u64 {
    120
}

/// Connection and destination.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// A MongoDB connection string; TLS, auth and replica-set options go here.
    pub uri: String,
    pub database: String,
    pub collection: String,
    /// `majority` (default) or a number of nodes.
    #[serde(default)]
    pub write_concern: WriteConcernConfig,
}

/// `write_concern`: `majority` or a node count.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum WriteConcernConfig {
    Nodes(u32),
    Named(String),
}

impl Default for WriteConcernConfig {
    fn default() -> Self {
        Self::Named("majority".to_string())
    }
}

/// `id`: `position` or `{fields: [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IdConfig {
    Named(String),
    Fields { fields: Vec<String> },
}

/// `timestamp: {field, format}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampConfig {
    pub field: String,
    /// `rfc3339`, `naive_utc`, `epoch_seconds`, `epoch_millis` or `epoch_nanos`.
    pub format: String,
}

/// One index: `{keys: {t: 1}, unique: false, name: ...}`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    pub keys: Document,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub name: Option<String>,
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: String,
    pub uri: String,
    pub database: String,
    pub collection: String,
    pub dead_letter: String,
    pub majority: bool,
    pub write_nodes: u32,
    pub format: Format,
    pub batch_size: usize,
    pub max_in_flight: usize,
    pub indexes: Vec<IndexConfig>,
    pub retry_deadline: Duration,
}

impl Settings {
    /// Validates `config`; errors name the field.
    pub fn from_config(config: &Config, source_name: &str) -> Result<Self, ConfigError> {
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            source_name: source_name.to_string(),
            field: field.to_string(),
            reason,
        };
        globset::Glob::new(&config.source).map_err(|e| {
            invalid(
                "source",
                format!("{:?} is not a valid glob: {}", config.source, e.kind()),
            )
        })?;
        mongodb::options::ConnectionString::parse(&config.mongodb.uri).map_err(|e| {
            invalid(
                "mongodb.uri",
                format!(
                    "not a valid MongoDB connection string: {}",
                    first_line(&e.to_string())
                ),
            )
        })?;
        check_database(&config.mongodb.database).map_err(|r| invalid("mongodb.database", r))?;
        check_collection(&config.mongodb.collection)
            .map_err(|r| invalid("mongodb.collection", r))?;
        let dead_letter = config
            .dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}_rejects", config.mongodb.collection));
        check_collection(&dead_letter).map_err(|r| invalid("dead_letter", r))?;
        if dead_letter == config.mongodb.collection {
            return Err(invalid(
                "dead_letter",
                "must differ from mongodb.collection".to_string(),
            ));
        }
        let (majority, write_nodes) = match &config.mongodb.write_concern {
            WriteConcernConfig::Named(name) if name == "majority" => (true, 0),
            WriteConcernConfig::Nodes(n) if *n >= 1 => (false, *n),
            other => {
                return Err(invalid(
                    "mongodb.write_concern",
                    format!("{other:?}: expected `majority` or a number of nodes >= 1"),
                ));
            }
        };
        let jsonl_only = config.id.is_some()
            || config.timestamp.is_some()
            || !config.decimals.is_empty()
            || config.extended_json;
        let format = match config.format.as_str() {
            "jsonl" => Format::Jsonl(
                jsonl_options(config).map_err(|(field, reason)| invalid(field, reason))?,
            ),
            preset => {
                if jsonl_only {
                    return Err(invalid(
                        "format",
                        format!(
                            "{preset}: id, timestamp, decimals and extended_json apply only to `jsonl`; presets fix them"
                        ),
                    ));
                }
                match preset {
                    "hyperliquid/node_trades" => Format::HlTrades,
                    "hyperliquid/node_fills" => Format::HlFills,
                    "hyperliquid/node_fills_by_block" => Format::HlFillsByBlock,
                    other => {
                        return Err(invalid(
                            "format",
                            format!(
                                "unknown format {other:?}: expected jsonl, hyperliquid/node_trades, hyperliquid/node_fills or hyperliquid/node_fills_by_block"
                            ),
                        ));
                    }
                }
            }
        };
        if !(1..=100_000).contains(&config.batch_size) {
            return Err(invalid("batch_size", "must be 1 to 100000".to_string()));
        }
        if !(1..=64).contains(&config.max_in_flight) {
            return Err(invalid("max_in_flight", "must be 1 to 64".to_string()));
        }
        if config.retry_deadline_secs == 0 {
            return Err(invalid(
                "retry_deadline_secs",
                "must be at least 1".to_string(),
            ));
        }
        for index in &config.indexes {
            if index.keys.is_empty() {
                return Err(invalid(
                    "indexes",
                    "an index needs at least one key".to_string(),
                ));
            }
        }
        Ok(Self {
            source: config.source.clone(),
            uri: config.mongodb.uri.clone(),
            database: config.mongodb.database.clone(),
            collection: config.mongodb.collection.clone(),
            dead_letter,
            majority,
            write_nodes,
            format,
            batch_size: config.batch_size,
            max_in_flight: config.max_in_flight,
            indexes: config.indexes.clone(),
            retry_deadline: Duration::from_secs(config.retry_deadline_secs),
        })
    }
}

fn jsonl_options(config: &Config) -> Result<Jsonl, (&'static str, String)> {
    let id = match &config.id {
        None => IdSpec::Position,
        Some(IdConfig::Named(name)) if name == "position" => IdSpec::Position,
        Some(IdConfig::Named(name)) if name == "line" => IdSpec::Line,
        Some(IdConfig::Named(other)) => {
            return Err((
                "id",
                format!("{other:?}: expected `position`, `line` or `{{fields: [...]}}`"),
            ));
        }
        Some(IdConfig::Fields { fields }) if fields.is_empty() => {
            return Err(("id", "fields must name at least one field".to_string()));
        }
        Some(IdConfig::Fields { fields }) => IdSpec::Fields(
            fields
                .iter()
                .map(|f| FieldPath::parse(f).map_err(|e| ("id", e)))
                .collect::<Result<_, _>>()?,
        ),
    };
    let timestamp = match &config.timestamp {
        None => None,
        Some(t) => Some((
            FieldPath::parse(&t.field).map_err(|e| ("timestamp.field", e))?,
            TimeFormat::parse(&t.format).ok_or((
                "timestamp.format",
                format!(
                    "{:?}: expected rfc3339, naive_utc, epoch_seconds, epoch_millis or epoch_nanos",
                    t.format
                ),
            ))?,
        )),
    };
    let decimals = config
        .decimals
        .iter()
        .map(|d| FieldPath::parse(d).map_err(|e| ("decimals", e)))
        .collect::<Result<_, _>>()?;
    Ok(Jsonl {
        id,
        timestamp,
        decimals,
        extended_json: config.extended_json,
    })
}

fn check_database(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 || name.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(format!(
            "{name:?} is not a valid database name (1-63 characters, none of / \\ . space \" $)"
        ));
    }
    Ok(())
}

fn check_collection(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['$', '\0']) || name.starts_with("system.") {
        return Err(format!(
            "{name:?} is not a valid collection name (non-empty, no $, not system.*)"
        ));
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
