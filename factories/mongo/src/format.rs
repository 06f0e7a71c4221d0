//! Turning one JSON line into the documents to store.
//!
//! A line is parsed straight into BSON, transformed (timestamps from the entry itself into BSON
//! dates, decimal strings into exact Decimal128, a deterministic `_id`), and encoded once into a
//! raw document whose size is checked against MongoDB's 16 MiB limit. Anything that cannot be
//! stored is a [`Reject`] with a reason; the caller dead-letters the line.
//!
//! Presets encode what we know of the Hyperliquid node's files (see `testdata/samples/`):
//! - `hyperliquid/node_trades`: naive UTC `time` (3 to 9 fraction digits), `px`, `sz` and
//!   `side_info.*.start_pos` as decimals, `_id` from time, coin, px, sz and both sides' oid and
//!   start_pos (trades have no id, and `hash` is shared, all zeros for TWAP slices).
//! - `hyperliquid/node_fills`: `[user, fill]` lines; `_id` from tid + user.
//! - `hyperliquid/node_fills_by_block`: one document per fill, with `block_number` and
//!   `block_time`; `_id` from tid + user.
//!
//! Natural keys make re-appended lines (node restarts) land on the same `_id`.
//!
//! Timestamps ([`parse_datetime`], both paths): the fields of a `time` string are read at fixed
//! positions by hand, and the calendar (month lengths, leap years, epoch nanoseconds) is the
//! `time` crate's; measured against the hand-written calendar it replaced, no slower
//! (docs/benchmarks.md, "Transform: calendar arithmetic").
//!
//! Two paths give the same documents. The generic path ([`Format::transform_generic`]) parses
//! any line into a `Bson` tree, transforms the tree and encodes it. For the trade preset, a
//! typed fast path ([`trades`]) reads the node's own line shape and writes the BSON directly,
//! in about a quarter of the time; any line it does not take goes down the generic path.
//! Submodules: [`decimal`] (exact Decimal128 from decimal strings, for both paths), [`raw`] (the
//! fast path's BSON writer and JSON readers), [`trades`] (the fast path).

mod decimal;
mod json;
mod raw;
mod trades;

use decimal::parse_decimal;
use mongodb::bson::{self, Bson, DateTime, Document, RawDocumentBuf};
use std::sync::LazyLock;

/// MongoDB's document size limit.
pub const MAX_DOCUMENT: usize = 16 * 1024 * 1024;

/// Why a line cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject(pub String);

type Result<T> = std::result::Result<T, Reject>;

fn reject<T>(reason: impl Into<String>) -> Result<T> {
    Err(Reject(reason.into()))
}

/// One step of a field path: `a`, `0`, or `*` (every element of an array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
    Any,
}

/// A dotted field path such as `side_info.*.start_pos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub text: String,
    segments: Vec<Segment>,
}

impl FieldPath {
    /// Parses `a.b.0.c` / `a.*.c`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        if text.is_empty() || text.split('.').any(str::is_empty) {
            return Err(format!("{text:?} is not a field path"));
        }
        let segments = text
            .split('.')
            .map(|part| match part {
                "*" => Segment::Any,
                _ => part
                    .parse::<usize>()
                    .map(Segment::Index)
                    .unwrap_or_else(|_| Segment::Key(part.to_string())),
            })
            .collect();
        Ok(Self {
            text: text.to_string(),
            segments,
        })
    }

    /// The path of a top-level key.
    fn top_level(key: &str) -> Self {
        Self {
            text: key.to_string(),
            segments: vec![Segment::Key(key.to_string())],
        }
    }
}

fn collect<'a>(value: &'a Bson, segments: &[Segment], out: &mut Vec<&'a Bson>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push(value);
        return;
    };
    match (first, value) {
        (Segment::Key(key), Bson::Document(doc)) => {
            if let Some(v) = doc.get(key) {
                collect(v, rest, out);
            }
        }
        (Segment::Index(i), Bson::Array(items)) => {
            if let Some(v) = items.get(*i) {
                collect(v, rest, out);
            }
        }
        (Segment::Any, Bson::Array(items)) => items.iter().for_each(|v| collect(v, rest, out)),
        _ => {}
    }
}

/// Applies `f` to every value at `segments`; `Ok(0)` when nothing is there.
fn update(
    value: &mut Bson,
    segments: &[Segment],
    f: &mut dyn FnMut(&mut Bson) -> Result<()>,
) -> Result<usize> {
    let Some((first, rest)) = segments.split_first() else {
        f(value)?;
        return Ok(1);
    };
    match (first, value) {
        (Segment::Key(key), Bson::Document(doc)) => match doc.get_mut(key) {
            Some(v) => update(v, rest, f),
            None => Ok(0),
        },
        (Segment::Index(i), Bson::Array(items)) => match items.get_mut(*i) {
            Some(v) => update(v, rest, f),
            None => Ok(0),
        },
        (Segment::Any, Bson::Array(items)) => {
            let mut n = 0;
            for v in items.iter_mut() {
                n += update(v, rest, f)?;
            }
            Ok(n)
        }
        _ => Ok(0),
    }
}

/// How an entry's own timestamp is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2025-06-24T02:56:36.172847427Z` or with `+02:00`.
    Rfc3339,
    /// `2025-06-24T02:56:36.172847427`: no zone, UTC (the Hyperliquid node).
    NaiveUtc,
    EpochSeconds,
    EpochMillis,
    EpochNanos,
}

impl TimeFormat {
    /// Parses the config spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "rfc3339" => Self::Rfc3339,
            "naive_utc" => Self::NaiveUtc,
            "epoch_seconds" => Self::EpochSeconds,
            "epoch_millis" => Self::EpochMillis,
            "epoch_nanos" => Self::EpochNanos,
            _ => return None,
        })
    }
}

/// Where `_id` comes from. Whatever the choice, a line is never stored with an `_id` other
/// than its own when it has one: with `Position` or `Fields`, a line that has an `_id` is
/// refused (dead-lettered) with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSpec {
    /// The pond's instance id, the pond file's node id and the line's byte offset.
    Position,
    /// A hash of these fields' values: a natural key.
    Fields(Vec<FieldPath>),
    /// The line's own `_id` (a line without one is refused).
    Line,
}

/// The generic `jsonl` format's options.
#[derive(Debug, Clone)]
pub struct Jsonl {
    pub id: IdSpec,
    pub timestamp: Option<(FieldPath, TimeFormat)>,
    pub decimals: Vec<FieldPath>,
    /// Read MongoDB extended JSON (`$oid`, `$date`, `$numberDecimal`, ...); plain JSON when
    /// false.
    pub extended_json: bool,
}

/// A validated line format.
#[derive(Debug, Clone)]
pub enum Format {
    Jsonl(Jsonl),
    HlTrades,
    HlFills,
    HlFillsByBlock,
}

/// Where a line is: for position ids and dead letters.
#[derive(Debug, Clone, Copy)]
pub struct LineAt<'a> {
    /// The line's file as ids name it: `<pond instance id>:<node id>`, or `<node id>` in a pond
    /// created before ponds had an instance id (so its ids stay what they were).
    pub source: &'a str,
    pub offset: u64,
}

/// A preset's field paths, parsed once.
struct PresetPaths {
    /// The natural key's fields, in hashing order.
    key: Vec<FieldPath>,
    /// Decimal fields that must be there.
    decimals: Vec<FieldPath>,
    /// Decimal fields that may be missing.
    optional_decimals: Vec<FieldPath>,
    /// The entry's own time.
    time: FieldPath,
}

impl PresetPaths {
    fn new(key: &[&str], decimals: &[&str], optional_decimals: &[&str], time: &str) -> Self {
        Self {
            key: paths(key),
            decimals: paths(decimals),
            optional_decimals: paths(optional_decimals),
            time: FieldPath::top_level(time),
        }
    }
}

/// Parses the presets' constant paths, all valid (checked by `preset_paths_all_parse`).
fn paths(texts: &[&str]) -> Vec<FieldPath> {
    texts
        .iter()
        .filter_map(|t| FieldPath::parse(t).ok())
        .collect()
}

static TRADE_PATHS: LazyLock<PresetPaths> = LazyLock::new(|| {
    PresetPaths::new(
        &[
            "time",
            "coin",
            "px",
            "sz",
            "side_info.0.oid",
            "side_info.0.start_pos",
            "side_info.1.oid",
            "side_info.1.start_pos",
        ],
        &["px", "sz"],
        &["side_info.*.start_pos"],
        "time",
    )
});

static FILL_PATHS: LazyLock<PresetPaths> = LazyLock::new(|| {
    PresetPaths::new(
        &["tid", "user"],
        &["px", "sz"],
        &["startPosition", "closedPnl", "fee"],
        "time",
    )
});

static BLOCK_TIME: LazyLock<FieldPath> = LazyLock::new(|| FieldPath::top_level("block_time"));

impl Format {
    /// Turns one line (without its newline) into documents ready to insert: through the typed
    /// fast path when there is one for the format and the line fits it, else the generic path.
    pub fn transform(&self, line: &[u8], at: LineAt<'_>) -> Result<Vec<RawDocumentBuf>> {
        if let Format::HlTrades = self
            && let Some(doc) = trades::transform(line)
        {
            return Ok(vec![doc]);
        }
        self.transform_generic(line, at)
    }

    /// The generic path alone: what [`Format::transform`] does with a line the fast path does
    /// not take. Public for the tests and the benchmark that compare the two.
    pub fn transform_generic(&self, line: &[u8], at: LineAt<'_>) -> Result<Vec<RawDocumentBuf>> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return reject("empty line");
        }
        let extended = matches!(self, Format::Jsonl(options) if options.extended_json);
        let value = json::parse(line, extended)?;
        let docs = match self {
            Format::Jsonl(options) => vec![jsonl(options, value, at)?],
            Format::HlTrades => vec![hl_trade(value)?],
            Format::HlFills => {
                let Bson::Array(pair) = value else {
                    return reject("expected a [user, fill] array");
                };
                vec![hl_fill(pair, None)?]
            }
            Format::HlFillsByBlock => hl_fills_by_block(value)?,
        };
        docs.iter().map(encode).collect()
    }
}

fn encode(doc: &Document) -> Result<RawDocumentBuf> {
    let raw =
        RawDocumentBuf::from_document(doc).or_else(|e| reject(format!("cannot encode: {e}")))?;
    if raw.as_bytes().len() > MAX_DOCUMENT {
        return reject(format!(
            "document is {} bytes, over MongoDB's {MAX_DOCUMENT}-byte limit",
            raw.as_bytes().len()
        ));
    }
    Ok(raw)
}

fn into_document(value: Bson) -> Result<Document> {
    match value {
        Bson::Document(doc) => Ok(doc),
        other => reject(format!(
            "expected a JSON object, found {}",
            type_name(&other)
        )),
    }
}

fn type_name(value: &Bson) -> &'static str {
    match value {
        Bson::String(_) => "a string",
        Bson::Array(_) => "an array",
        Bson::Document(_) => "an object",
        Bson::Boolean(_) => "a boolean",
        Bson::Null => "null",
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => "a number",
        _ => "a non-JSON value",
    }
}

fn jsonl(options: &Jsonl, value: Bson, at: LineAt<'_>) -> Result<Document> {
    let mut doc = into_document(value)?;
    let own_id = doc.remove("_id");
    let mut value = Bson::Document(doc);
    let id = match (&options.id, own_id) {
        (IdSpec::Line, Some(id)) => id,
        (IdSpec::Line, None) => return reject("the line has no _id (the config says `id: line`)"),
        (_, Some(_)) => {
            return reject(
                "the line has its own _id: set `id: line` to store it as the document's _id, \
                 or remove it from the line",
            );
        }
        (IdSpec::Position, None) => Bson::String(format!("{}:{}", at.source, at.offset)),
        (IdSpec::Fields(fields), None) => natural_key(&value, fields)?,
    };
    for path in &options.decimals {
        decimal(&mut value, path, false)?;
    }
    if let Some((path, format)) = &options.timestamp {
        timestamp(&mut value, path, *format)?;
    }
    let mut doc = into_document(value)?;
    doc.insert("_id", id);
    Ok(doc)
}

/// A hex BLAKE3 of the fields' values: equal lines get equal ids.
fn natural_key(value: &Bson, fields: &[FieldPath]) -> Result<Bson> {
    let mut key = NaturalKey::new();
    let mut found = Vec::new();
    for field in fields {
        found.clear();
        collect(value, &field.segments, &mut found);
        if found.is_empty() {
            return reject(format!("key field {} is missing", field.text));
        }
        for v in &found {
            match v {
                Bson::String(s) => key.string(s),
                Bson::Int32(n) => key.int(i64::from(*n)),
                Bson::Int64(n) => key.int(*n),
                Bson::Null => key.value(b"n"),
                other => key.value(format!("x{other}").as_bytes()),
            }
        }
    }
    Ok(key.with_id(|id| Bson::String(id.to_string())))
}

/// A natural key's hash. Each value is type-tagged, so that "1" and 1 differ, and followed by
/// \x1f. The generic path and the fast path both hash through this, so their `_id`s agree.
///
/// The bytes are gathered before they are hashed: a trade's key is about 120 bytes in 24
/// pieces, and one BLAKE3 update per piece costs more than the copy.
struct NaturalKey {
    hasher: blake3::Hasher,
    pending: [u8; 256],
    len: usize,
}

impl NaturalKey {
    fn new() -> Self {
        Self {
            hasher: blake3::Hasher::new(),
            pending: [0; 256],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.pending.len() {
            self.hasher.update(&self.pending[..self.len]);
            self.len = 0;
            if bytes.len() > self.pending.len() {
                self.hasher.update(bytes);
                return;
            }
        }
        self.pending[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// A tagged value's bytes.
    fn value(&mut self, tagged: &[u8]) {
        self.push(tagged);
        self.push(b"\x1f");
    }

    fn string(&mut self, s: &str) {
        self.push(b"s");
        self.value(s.as_bytes());
    }

    /// `i` and the integer in decimal.
    fn int(&mut self, n: i64) {
        let mut digits = [0u8; 20];
        self.push(if n < 0 { b"i-" } else { b"i" });
        self.value(raw::decimal_digits(n.unsigned_abs(), &mut digits));
    }

    /// Hands the `_id` to `f`: the hash's first 32 hex digits.
    fn with_id<R>(&mut self, f: impl FnOnce(&str) -> R) -> R {
        self.hasher.update(&self.pending[..self.len]);
        self.len = 0;
        f(&self.hasher.finalize().to_hex()[..32])
    }
}

/// Converts decimal strings at `path` into Decimal128; `optional` paths may be absent.
fn decimal(value: &mut Bson, path: &FieldPath, optional: bool) -> Result<()> {
    let found = update(value, &path.segments, &mut |v| {
        let Bson::String(text) = v else {
            return reject(format!(
                "decimal field {} is {}, expected a string like \"0.4511\"",
                path.text,
                type_name(v)
            ));
        };
        let parsed = parse_decimal(text).ok_or_else(|| {
            Reject(format!(
                "decimal field {} is {text:?}, not a decimal",
                path.text
            ))
        })?;
        *v = Bson::Decimal128(parsed);
        Ok(())
    })?;
    // `a.*.b` over an empty array matches nothing, and that is fine.
    let wildcard = path.segments.contains(&Segment::Any);
    if found == 0 && !optional && !wildcard {
        return reject(format!("decimal field {} is missing", path.text));
    }
    Ok(())
}

/// Replaces the timestamp at `path` with a BSON date and adds `<field>_ns` (epoch nanoseconds)
/// so that sub-millisecond precision is kept.
fn timestamp(value: &mut Bson, path: &FieldPath, format: TimeFormat) -> Result<()> {
    let mut nanos = None;
    let found = update(value, &path.segments, &mut |v| {
        let ns = match (format, &*v) {
            (TimeFormat::Rfc3339 | TimeFormat::NaiveUtc, Bson::String(text)) => {
                parse_datetime(text, format == TimeFormat::NaiveUtc).ok_or_else(|| {
                    Reject(format!(
                        "timestamp field {} is {text:?}, not a {format:?} time",
                        path.text
                    ))
                })?
            }
            (TimeFormat::EpochSeconds, n) => epoch(n, 1_000_000_000, path)?,
            (TimeFormat::EpochMillis, n) => epoch(n, 1_000_000, path)?,
            (TimeFormat::EpochNanos, n) => epoch(n, 1, path)?,
            (_, other) => {
                return reject(format!(
                    "timestamp field {} is {}, expected a string",
                    path.text,
                    type_name(other)
                ));
            }
        };
        *v = Bson::DateTime(DateTime::from_millis(ns.div_euclid(1_000_000) as i64));
        nanos = Some(ns);
        Ok(())
    })?;
    if found == 0 {
        return reject(format!("timestamp field {} is missing", path.text));
    }
    if let (Some(ns), Some(Segment::Key(last))) = (nanos, path.segments.last()) {
        // The extra field goes beside the timestamp: `time` -> `time_ns`; a line that has a
        // field by that name would lose it, so it is refused.
        let parent = &path.segments[..path.segments.len() - 1];
        let key = format!("{last}_ns");
        update(value, parent, &mut |p| {
            if let Bson::Document(doc) = p {
                if doc.contains_key(&key) {
                    return reject(format!(
                        "the line has its own {key}, which the timestamp's {key} would replace"
                    ));
                }
                doc.insert(key.clone(), Bson::Int64(ns as i64));
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn epoch(value: &Bson, unit_ns: i128, path: &FieldPath) -> Result<i128> {
    let n = match value {
        Bson::Int32(n) => i128::from(*n),
        Bson::Int64(n) => i128::from(*n),
        other => {
            return reject(format!(
                "timestamp field {} is {}, expected an integer",
                path.text,
                type_name(other)
            ));
        }
    };
    Ok(n * unit_ns)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]` followed by `Z`/`±HH:MM` (or nothing when `naive`)
/// into epoch nanoseconds.
///
/// The fields are read at fixed positions by hand (the node's shape, nothing else: `T` or a
/// space between date and time, 1 to 9 fraction digits, a leap second `:60` counted as the
/// next minute's first); the calendar (days in a month, leap years, days since the epoch) is
/// `time`'s.
pub fn parse_datetime(text: &str, naive: bool) -> Option<i128> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    // Two digits make at most 99.
    let two = |at: usize| u8::try_from(num(at..at + 2)?).ok();
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(two(5)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, two(8)?).ok()?;
    let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
    let leap_second = second == 60;
    let mut pos = 19;
    let mut frac_ns = 0u32;
    if b.get(pos) == Some(&b'.') {
        let start = pos + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let digits = end - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        frac_ns = num(start..end)? * 10u32.pow((9 - digits) as u32);
        pos = end;
    }
    let offset_secs = match &b[pos..] {
        [] if naive => 0,
        [b'Z'] | [b'z'] if !naive => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] if !naive => {
            let digit = |c: u8| c.is_ascii_digit().then(|| i128::from(c - b'0'));
            let minutes = (digit(*h1)? * 10 + digit(*h2)?) * 60 + digit(*m1)? * 10 + digit(*m2)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let second = if leap_second { 59 } else { second };
    let time = time::Time::from_hms_nano(hour, minute, second, frac_ns).ok()?;
    let utc_ns = time::PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp_nanos();
    Some(utc_ns + i128::from(leap_second) * 1_000_000_000 - offset_secs * 1_000_000_000)
}

/// Applies a preset's paths: the key first (from the values as written), then decimals, then
/// the time.
fn preset(value: Bson, paths: &PresetPaths, time: TimeFormat) -> Result<(Bson, Bson)> {
    let mut value = Bson::Document(into_document(value)?);
    let id = natural_key(&value, &paths.key)?;
    for path in &paths.decimals {
        decimal(&mut value, path, false)?;
    }
    for path in &paths.optional_decimals {
        decimal(&mut value, path, true)?;
    }
    timestamp(&mut value, &paths.time, time)?;
    Ok((value, id))
}

fn hl_trade(value: Bson) -> Result<Document> {
    refuse_own_id(&value)?;
    let (value, id) = preset(value, &TRADE_PATHS, TimeFormat::NaiveUtc)?;
    let mut doc = into_document(value)?;
    doc.insert("_id", id);
    Ok(doc)
}

/// A preset makes its own `_id`: a line that has one would lose it, so it is refused.
fn refuse_own_id(value: &Bson) -> Result<()> {
    if let Bson::Document(doc) = value
        && doc.contains_key("_id")
    {
        return reject("the line has its own _id, which the preset's natural key would replace");
    }
    Ok(())
}

/// A fill (`[user, fill]`), with the block's number and time when it came from a block.
fn hl_fill(pair: Vec<Bson>, block: Option<(&Option<Bson>, &Option<Bson>)>) -> Result<Document> {
    let [user, fill]: [Bson; 2] = pair
        .try_into()
        .map_err(|_| Reject("expected a [user, fill] pair".to_string()))?;
    let Bson::String(user) = user else {
        return reject("the user in [user, fill] is not a string");
    };
    let mut fill = into_document(fill)?;
    if fill.contains_key("_id") || fill.contains_key("user") {
        return reject("the fill has its own _id or user, which the preset would replace");
    }
    fill.insert("user", user);
    let (value, id) = preset(Bson::Document(fill), &FILL_PATHS, TimeFormat::EpochMillis)?;
    let mut doc = into_document(value)?;
    if let Some((number, time)) = block {
        if let Some(number) = number {
            doc.insert("block_number", number.clone());
        }
        if let Some(time) = time {
            let mut holder = Bson::Document(bson::doc! { "block_time": time.clone() });
            timestamp(&mut holder, &BLOCK_TIME, TimeFormat::NaiveUtc)?;
            if let Bson::Document(parts) = holder {
                doc.extend(parts);
            }
        }
    }
    doc.insert("_id", id);
    Ok(doc)
}

fn hl_fills_by_block(value: Bson) -> Result<Vec<Document>> {
    let mut block = into_document(value)?;
    let Some(Bson::Array(events)) = block.remove("events") else {
        return reject("expected an `events` array");
    };
    let number = block.remove("block_number");
    let time = block.remove("block_time");
    events
        .into_iter()
        .map(|event| match event {
            Bson::Array(pair) => hl_fill(pair, Some((&number, &time))),
            other => reject(format!(
                "an event is {}, expected [user, fill]",
                type_name(&other)
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests;
