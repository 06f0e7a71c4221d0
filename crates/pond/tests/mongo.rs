//! The `mongo` factory end to end: host files through `logfile` into a local MongoDB-protocol
//! server (one shared SecantusDB, one database per test), checked through the driver.
//!
//! Contents are compared with the source lines field by field: decimals must be Decimal128
//! holding exactly the source text, dates must be the entry's own time (computed here by an
//! independent parser, anchored to `date -u` values), `_id`s must not depend on the pond, the
//! file or the run. Fail-point tests scope their fail point to their own `appName` and hold
//! [`FAIL_POINTS`] (the server has one `failCommand` slot), so other tests are not disturbed.
//! Tests that stop the server are in `mongo_outage.rs`. Every `pond` a [`Pipeline`] runs is
//! bounded (a hung sync fails its test instead of hanging the suite).
//!
//! Needs SecantusDB: `SECANTUSD=/path/to/secantusd-py cargo test -p pond --test mongo` (`make
//! test` installs it into `.venv/`). The crash test's kill instants come from `MONGO_CRASH_SEED` (hex; printed on stderr).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use mongodb::bson::{Bson, Decimal128, Document, doc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::mongo::{
    self, LOGFILE_NODE, MONGO_NODE, Pipeline, SAMPLE_FILL_BLOCKS, SAMPLE_TRADES, epoch_ns,
    trade_line, trade_lines,
};
use support::{SplitMix64, TestPond, assert_one_line_error};

/// Held by tests that arm the server-wide fail point.
static FAIL_POINTS: Mutex<()> = Mutex::new(());

fn fail_point_lock() -> std::sync::MutexGuard<'static, ()> {
    FAIL_POINTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn testdata_trades() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/hl/node_trades/hourly/20250624/2"
    ))
    .unwrap()
}

fn lines_of(bytes: &[u8]) -> Vec<&str> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
}

fn to_lines(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Comparing stored documents with their source lines

/// The plain decimal text of `d` (its `Display` switches to `5.94E-8` for small exponents):
/// every coefficient digit and the exponent, so trailing zeros are kept.
fn plain_decimal(d: &Decimal128) -> String {
    let text = d.to_string();
    let Some((mantissa, exp)) = text.split_once('E') else {
        return text;
    };
    let exp: i64 = exp.parse().unwrap();
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let scale = frac.len() as i64 - exp;
    let body = if scale <= 0 {
        format!("{digits}{}", "0".repeat((-scale) as usize))
    } else if scale as usize >= digits.len() {
        format!("0.{}{digits}", "0".repeat(scale as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(digits.len() - scale as usize);
        format!("{a}.{b}")
    };
    if negative { format!("-{body}") } else { body }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Compares a stored value with its source JSON. Paths use `*` for array elements; values at
/// `decimals` must be Decimal128 holding exactly the source text; `skip` paths are the caller's.
fn same(
    src: &Value,
    stored: &Bson,
    path: &str,
    decimals: &[&str],
    skip: &[&str],
) -> Result<(), String> {
    let differ = || Err(format!("{path}: {src} is stored as {stored:?}"));
    if decimals.contains(&path) {
        return match (src, stored) {
            (Value::String(text), Bson::Decimal128(d)) if plain_decimal(d) == *text => Ok(()),
            _ => differ(),
        };
    }
    match (src, stored) {
        (Value::Object(map), Bson::Document(doc)) => {
            for (key, value) in map {
                let p = join(path, key);
                if skip.contains(&p.as_str()) {
                    continue;
                }
                let Some(s) = doc.get(key) else {
                    return Err(format!("{p} is missing"));
                };
                same(value, s, &p, decimals, skip)?;
            }
            Ok(())
        }
        (Value::Array(items), Bson::Array(stored_items)) if items.len() == stored_items.len() => {
            let p = join(path, "*");
            items
                .iter()
                .zip(stored_items)
                .try_for_each(|(v, s)| same(v, s, &p, decimals, skip))
        }
        (Value::String(a), Bson::String(b)) if a == b => Ok(()),
        (Value::Bool(a), Bson::Boolean(b)) if a == b => Ok(()),
        (Value::Null, Bson::Null) => Ok(()),
        (Value::Number(n), Bson::Int64(b)) if n.as_i64() == Some(*b) => Ok(()),
        (Value::Number(n), Bson::Int32(b)) if n.as_i64() == Some(i64::from(*b)) => Ok(()),
        (Value::Number(n), Bson::Double(b)) if n.is_f64() && n.as_f64() == Some(*b) => Ok(()),
        _ => differ(),
    }
}

/// Asserts `doc` has exactly the keys of `src` plus `extra`.
#[track_caller]
fn assert_keys(src: &Value, doc: &Document, extra: &[&str]) {
    let mut expected: BTreeSet<String> = src.as_object().unwrap().keys().cloned().collect();
    expected.extend(extra.iter().map(|k| k.to_string()));
    let stored: BTreeSet<String> = doc.keys().cloned().collect();
    assert_eq!(stored, expected, "keys of {doc}");
}

/// Asserts a BSON date and its `_ns` companion hold `text`'s instant.
#[track_caller]
fn assert_time(doc: &Document, field: &str, ns: i128) {
    let date = doc
        .get_datetime(field)
        .unwrap_or_else(|_| panic!("{field} is not a date: {doc}"));
    assert_eq!(
        i128::from(date.timestamp_millis()),
        ns.div_euclid(1_000_000),
        "{field} of {doc}"
    );
    assert_eq!(
        doc.get_i64(format!("{field}_ns")).map(i128::from),
        Ok(ns),
        "{field}_ns of {doc}"
    );
}

/// An integer field, whichever BSON width it was stored with (small JSON integers come out as
/// Int32).
fn int(doc: &Document, key: &str) -> Option<i64> {
    match doc.get(key)? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        _ => None,
    }
}

fn assert_hex_id(doc: &Document) {
    let id = doc.get_str("_id").unwrap_or_else(|_| panic!("_id: {doc}"));
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "_id {id:?}"
    );
}

/// Checks one stored trade against its source line.
#[track_caller]
fn check_trade(line: &str, doc: &Document) {
    let src: Value = serde_json::from_str(line).unwrap();
    same(
        &src,
        &Bson::Document(doc.clone()),
        "",
        &["px", "sz", "side_info.*.start_pos"],
        &["time"],
    )
    .unwrap_or_else(|e| panic!("{e}\nline: {line}\nstored: {doc}"));
    assert_keys(&src, doc, &["_id", "time_ns"]);
    assert_time(doc, "time", epoch_ns(src["time"].as_str().unwrap()));
    assert_hex_id(doc);
}

/// Checks one stored fill against its `[user, fill]` and, from a block, the block's header.
#[track_caller]
fn check_fill(user: &str, fill: &Value, block: Option<&Value>, doc: &Document) {
    same(
        fill,
        &Bson::Document(doc.clone()),
        "",
        &["px", "sz", "startPosition", "closedPnl", "fee"],
        &["time"],
    )
    .unwrap_or_else(|e| panic!("{e}\nfill: {fill}\nstored: {doc}"));
    assert_eq!(doc.get_str("user"), Ok(user), "{doc}");
    let ms = fill["time"].as_i64().unwrap();
    assert_time(doc, "time", i128::from(ms) * 1_000_000);
    let mut extra = vec!["_id", "user", "time_ns"];
    if let Some(number) = block.and_then(|b| b.get("block_number")) {
        let stored = doc
            .get("block_number")
            .and_then(|b| match b {
                Bson::Int64(n) => Some(*n),
                Bson::Int32(n) => Some(i64::from(*n)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("block_number: {doc}"));
        assert_eq!(Some(stored), number.as_i64());
        extra.push("block_number");
    }
    if let Some(time) = block.and_then(|b| b.get("block_time")) {
        assert_time(doc, "block_time", epoch_ns(time.as_str().unwrap()));
        extra.extend(["block_time", "block_time_ns"]);
    }
    assert_keys(fill, doc, &extra);
    assert_hex_id(doc);
}

/// Stored documents by their `time_ns` (unique in these tests' trade lines).
fn by_time(docs: &[Document]) -> BTreeMap<i64, Document> {
    let mut map = BTreeMap::new();
    for doc in docs {
        let ns = doc.get_i64("time_ns").unwrap();
        assert!(
            map.insert(ns, doc.clone()).is_none(),
            "two documents at {ns}"
        );
    }
    map
}

/// `time_ns -> _id` of stored trades.
fn ids_by_time(docs: &[Document]) -> BTreeMap<i64, String> {
    by_time(docs)
        .into_iter()
        .map(|(ns, d)| (ns, d.get_str("_id").unwrap().to_string()))
        .collect()
}

fn line_time_ns(line: &str) -> i64 {
    let src: Value = serde_json::from_str(line).unwrap();
    epoch_ns(src["time"].as_str().unwrap()) as i64
}

/// `[user, fill]` line number `i`, built from the fills of [`SAMPLE_FILL_BLOCKS`]: its own `tid`
/// and `time`.
fn fill_line(i: u64) -> (String, Value) {
    let fills: Vec<Value> = SAMPLE_FILL_BLOCKS
        .iter()
        .flat_map(|b| {
            let block: Value = serde_json::from_str(b).unwrap();
            block["events"].as_array().unwrap().clone()
        })
        .collect();
    let mut pair = fills[(i as usize) % fills.len()].clone();
    pair[1]["tid"] = (pair[1]["tid"].as_u64().unwrap() + i * 7).into();
    pair[1]["time"] = (pair[1]["time"].as_u64().unwrap() + i).into();
    (serde_json::to_string(&pair).unwrap(), pair)
}

// ---------------------------------------------------------------------------------------------
// The time parser used for expectations, anchored to `date -u +%s`

#[test]
fn expected_times_match_date_anchors() {
    // date -u -d '2025-06-24T02:56:36' +%s, and so on.
    assert_eq!(
        epoch_ns("2025-06-24T02:56:36.172847427"),
        1_750_733_796_172_847_427
    );
    assert_eq!(
        epoch_ns("2024-09-19T10:00:02.015"),
        1_726_740_002_015_000_000
    );
    assert_eq!(epoch_ns("2026-06-28T08:43:53"), 1_782_636_233_000_000_000);
    assert_eq!(
        epoch_ns("2026-06-28T10:43:53.5+02:00"),
        1_782_636_233_500_000_000
    );
    assert_eq!(
        epoch_ns("2026-06-28T03:13:53Z"),
        epoch_ns("2026-06-28T08:43:53+05:30")
    );
    assert_eq!(
        plain_decimal(&"0.0000000594".parse().unwrap()),
        "0.0000000594"
    );
    assert_eq!(plain_decimal(&"-2074344.0".parse().unwrap()), "-2074344.0");
    assert_eq!(plain_decimal(&"100".parse().unwrap()), "100");
}

// ---------------------------------------------------------------------------------------------
// Presets and jsonl, end to end

/// Trades preset: every line stored once, decimals exact, dates from the entries, and a rerun
/// stores nothing more.
#[test]
fn trades_flow_from_host_through_logfile_into_mongodb_exactly_once() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "trades_e2e",
        "hyperliquid/node_trades",
        "batch_size: 50\n",
    );
    let lines = testdata_trades();
    let line_count = lines.iter().filter(|&&b| b == b'\n').count() as u64;
    p.write("20250624/2", &lines);
    let report = p.sync();
    assert_eq!(report["inserted"], line_count, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["dead_lettered"], 0, "{report}");
    assert_eq!(p.count(), line_count);

    // Rerun and a direct sync: nothing new, nothing duplicated.
    let again = p.sync();
    assert_eq!(again["inserted"], 0, "{again}");
    let direct = p.mongo_sync();
    assert_eq!(direct["inserted"], 0, "{direct}");
    assert_eq!(direct["duplicates"], 0, "{direct}");
    assert_eq!(p.count(), line_count);
}

/// Trades preset: the node's hour file and the sample shapes (nanosecond and millisecond times):
/// every field kept, `px`, `sz` and each `start_pos` exact Decimal128, `time` the entry's own
/// instant as a date plus `time_ns`.
#[test]
fn trades_preset_keeps_every_field_with_exact_decimals_and_entry_times() {
    let server = mongo::shared();
    let p = Pipeline::new(server, "trades_fields", "hyperliquid/node_trades", "");
    let hour = testdata_trades();
    let samples: Vec<String> = SAMPLE_TRADES.iter().map(|s| s.to_string()).collect();
    p.write("20250624/2", &hour);
    p.write("20240919/10", &to_lines(&samples));
    let report = p.sync();
    let mut all: Vec<&str> = lines_of(&hour);
    all.extend(samples.iter().map(String::as_str));
    assert_eq!(report["inserted"], all.len(), "{report}");
    let stored = by_time(&p.docs());
    assert_eq!(stored.len(), all.len());
    for line in &all {
        let doc = stored
            .get(&line_time_ns(line))
            .unwrap_or_else(|| panic!("no document for {line}"));
        check_trade(line, doc);
    }
    // Spot checks with literal values.
    let first = &stored[&1_750_733_796_172_847_427];
    assert_eq!(
        first.get_datetime("time").unwrap().timestamp_millis(),
        1_750_733_796_172
    );
    assert_eq!(plain_decimal(first.get_decimal128("px").unwrap()), "2393.9");
    let zk = &stored[&1_726_740_002_015_000_000];
    assert_eq!(plain_decimal(zk.get_decimal128("sz").unwrap()), "158.0");
    let sides = zk.get_array("side_info").unwrap();
    let start = sides[1].as_document().unwrap().get_decimal128("start_pos");
    assert_eq!(plain_decimal(start.unwrap()), "-2074344.0");
}

/// Fills preset: `[user, fill]` lines, one document each with `user`, decimals exact and the
/// fill's epoch-millisecond `time` as a date.
#[test]
fn fills_preset_stores_each_user_fill_pair() {
    let server = mongo::shared();
    let p = Pipeline::new(server, "fills", "hyperliquid/node_fills", "batch_size: 7\n");
    let pairs: Vec<(String, Value)> = (0..30).map(fill_line).collect();
    let lines: Vec<String> = pairs.iter().map(|(l, _)| l.clone()).collect();
    p.write("20250801/2", &to_lines(&lines));
    let report = p.sync();
    assert_eq!(report["inserted"], 30, "{report}");
    let docs = p.docs();
    assert_eq!(docs.len(), 30);
    let mut by_key: BTreeMap<(i64, String), &Document> = BTreeMap::new();
    for doc in &docs {
        by_key.insert(
            (
                doc.get_i64("tid").unwrap(),
                doc.get_str("user").unwrap().to_string(),
            ),
            doc,
        );
    }
    for (_, pair) in &pairs {
        let user = pair[0].as_str().unwrap();
        let key = (pair[1]["tid"].as_i64().unwrap(), user.to_string());
        check_fill(user, &pair[1], None, by_key[&key]);
    }
    // The sample fill with a tiny fee: exact, not 5.94E-8 rounded.
    let tiny = docs
        .iter()
        .find(|d| d.get_str("feeToken") == Ok("UBTC"))
        .unwrap();
    assert_eq!(
        plain_decimal(tiny.get_decimal128("fee").unwrap()),
        "0.0000000594"
    );
}

/// Fills-by-block preset: one document per fill, with the block's number and time (when the
/// block has a header); both fills of one trade (same `tid`, two users) are kept.
#[test]
fn fills_by_block_preset_stores_one_document_per_fill() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "fills_by_block",
        "hyperliquid/node_fills_by_block",
        "",
    );
    let mut lines: Vec<String> = SAMPLE_FILL_BLOCKS.iter().map(|s| s.to_string()).collect();
    // More blocks built from the first: new block numbers, times and tids.
    let mut expected_fills = 3;
    for n in 1..=5u64 {
        let mut block: Value = serde_json::from_str(SAMPLE_FILL_BLOCKS[0]).unwrap();
        block["block_number"] = (1_052_527_672 + n).into();
        block["block_time"] = format!("2026-06-28T08:43:5{n}.1{n}").into();
        let event = block["events"][0].clone();
        let mut events = Vec::new();
        for k in 0..n {
            let mut e = event.clone();
            e[1]["tid"] = (340_554_939_716_632 + n * 100 + k).into();
            events.push(e);
        }
        expected_fills += n;
        block["events"] = events.into();
        lines.push(serde_json::to_string(&block).unwrap());
    }
    p.write("20260628/8", &to_lines(&lines));
    let report = p.sync();
    assert_eq!(report["inserted"], expected_fills, "{report}");
    let docs = p.docs();
    assert_eq!(docs.len() as u64, expected_fills);
    let find = |tid: i64, user: &str| {
        docs.iter()
            .find(|d| d.get_i64("tid") == Ok(tid) && d.get_str("user") == Ok(user))
            .unwrap_or_else(|| panic!("no fill {tid} {user}"))
    };
    for line in &lines {
        let block: Value = serde_json::from_str(line).unwrap();
        for event in block["events"].as_array().unwrap() {
            let user = event[0].as_str().unwrap();
            let doc = find(event[1]["tid"].as_i64().unwrap(), user);
            check_fill(user, &event[1], Some(&block), doc);
        }
    }
    // The header-less sample block: no block fields on its two fills, two distinct ids.
    let a = find(
        343_451_763_467_020,
        "0x2e434472e65249f6b8eb3bb5d240f0682c1c7a9f",
    );
    let b = find(
        343_451_763_467_020,
        "0x3c516f085e94177eaf0bdfb5b5eb1ab71052d064",
    );
    assert!(!a.contains_key("block_number") && !a.contains_key("block_time"));
    assert_ne!(a.get_str("_id"), b.get_str("_id"));
    let first = find(
        340_554_939_716_632,
        "0xa775d1bd91ee2cc4cae6113e5fd9c0c17b355277",
    );
    assert_eq!(
        first.get_datetime("block_time").unwrap().timestamp_millis(),
        1_782_636_233_257
    );
    assert_eq!(
        first.get_i64("block_time_ns"),
        Ok(1_782_636_233_257_028_820)
    );
}

/// Generic `jsonl`: `_id` from the named fields, the entry's RFC 3339 time (any offset) as a date
/// plus `_ns`, nested decimals exact; other fields untouched.
#[test]
fn jsonl_with_field_ids_timestamp_and_decimals() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "jsonl_generic",
        "jsonl",
        "id: {fields: [venue, seq]}\ntimestamp: {field: meta.at, format: rfc3339}\ndecimals: [price, legs.*.qty]\n",
    );
    let lines: Vec<String> = [
        r#"{"venue":"X","seq":1,"meta":{"at":"2025-06-24T02:56:36.123456789Z","src":"a"},"price":"12.3400","legs":[{"qty":"1.5"},{"qty":"-0.000001"}],"note":"é ü"}"#,
        r#"{"venue":"X","seq":2,"meta":{"at":"2025-06-24T04:56:36.5+02:00"},"price":"0","legs":[{"qty":"2.000"}],"n":1.25}"#,
        r#"{"venue":"Y","seq":1,"meta":{"at":"2025-06-23T21:26:36-05:30"},"price":"-99999999999999999.99","legs":[{"qty":"3"}],"flag":true,"none":null}"#,
        r#"{"venue":"X","seq":"1","meta":{"at":"2025-06-24T02:56:36.1Z"},"price":"1","legs":[{"qty":"0.1"},{"qty":"0.2"}]}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    p.write("20250624/2", &to_lines(&lines));
    let report = p.sync();
    let rejects = p.docs_of("docs_rejects");
    assert_eq!(report["dead_lettered"], 0, "{report}\n{rejects:#?}");
    assert_eq!(report["inserted"], 4, "{report}");
    let docs = p.docs();
    assert_eq!(docs.len(), 4, "seq 1 and \"1\" are different keys");
    for line in &lines {
        let src: Value = serde_json::from_str(line).unwrap();
        let doc = docs
            .iter()
            .find(|d| {
                d.get_str("venue") == Ok(src["venue"].as_str().unwrap())
                    && match (d.get("seq"), &src["seq"]) {
                        (Some(Bson::String(a)), Value::String(b)) => a == b,
                        (Some(Bson::Int64(a)), Value::Number(b)) => Some(*a) == b.as_i64(),
                        (Some(Bson::Int32(a)), Value::Number(b)) => {
                            Some(i64::from(*a)) == b.as_i64()
                        }
                        _ => false,
                    }
            })
            .unwrap_or_else(|| panic!("no document for {line}"));
        same(
            &src,
            &Bson::Document(doc.clone()),
            "",
            &["price", "legs.*.qty"],
            &["meta.at"],
        )
        .unwrap_or_else(|e| panic!("{e}\nline: {line}\nstored: {doc}"));
        assert_keys(&src, doc, &["_id"]);
        let meta = doc.get_document("meta").unwrap();
        let mut src_meta = src["meta"].clone();
        src_meta["at_ns"] = 0.into();
        assert_keys(&src_meta, meta, &[]);
        assert_time(meta, "at", epoch_ns(src["meta"]["at"].as_str().unwrap()));
        assert_hex_id(doc);
    }
    // The three offsets of the same wall instant agree.
    let instant = |venue: &str, seq: i64| {
        docs.iter()
            .find(|d| d.get_str("venue") == Ok(venue) && int(d, "seq") == Some(seq))
            .unwrap()
            .get_document("meta")
            .unwrap()
            .get_i64("at_ns")
            .unwrap()
    };
    assert_eq!(instant("X", 2), 1_750_733_796_500_000_000);
    assert_eq!(instant("Y", 1), 1_750_733_796_000_000_000);
    assert_eq!(instant("X", 1), 1_750_733_796_123_456_789);

    // The natural key absorbs a line with the same venue and seq, whatever else it holds.
    p.append(
        "20250624/2",
        b"{\"venue\":\"X\",\"seq\":2,\"meta\":{\"at\":\"2030-01-01T00:00:00Z\"},\"price\":\"7\",\"legs\":[{\"qty\":\"1\"}]}\n",
    );
    let again = p.sync();
    assert_eq!(again["inserted"], 0, "{again}");
    assert_eq!(again["duplicates"], 1, "{again}");
    assert_eq!(p.count(), 4);
}

/// The same line gets the same `_id` in another pond, file and order; re-appended lines (node
/// restarts) add no documents, for every preset and for `jsonl` with field ids.
#[test]
fn ids_are_deterministic_and_reappended_lines_add_nothing() {
    let server = mongo::shared();
    let trades: Vec<String> = (0..40).map(trade_line).collect();
    let fills: Vec<String> = (0..20).map(|i| fill_line(i).0).collect();
    let blocks: Vec<String> = SAMPLE_FILL_BLOCKS.iter().map(|s| s.to_string()).collect();
    let jsonl: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"k":{i},"at":"2025-06-24T02:56:{i:02}Z","v":"{i}.50"}}"#))
        .collect();
    let cases: [(&str, &str, &[String], u64); 4] = [
        ("hyperliquid/node_trades", "", &trades, 40),
        ("hyperliquid/node_fills", "", &fills, 20),
        ("hyperliquid/node_fills_by_block", "", &blocks, 3),
        (
            "jsonl",
            "id: {fields: [k]}\ntimestamp: {field: at, format: rfc3339}\ndecimals: [v]\n",
            &jsonl,
            20,
        ),
    ];
    for (i, (format, extra, lines, docs)) in cases.into_iter().enumerate() {
        let batch = format!("{extra}batch_size: 3\n");
        // Pond A: one file, in order.
        let a = Pipeline::new(server, &format!("det_a{i}"), format, &batch);
        a.write("20250624/2", &to_lines(lines));
        assert_eq!(a.sync()["inserted"], docs, "{format}");
        // Pond B: two files, reversed, with a different batch size.
        let b = Pipeline::new(server, &format!("det_b{i}"), format, extra);
        let mut reversed = lines.to_vec();
        reversed.reverse();
        let half = reversed.len() / 2;
        b.write("20250625/0", &to_lines(&reversed[..half]));
        b.write("20250625/1", &to_lines(&reversed[half..]));
        assert_eq!(b.sync()["inserted"], docs, "{format}");
        assert_eq!(
            a.docs(),
            b.docs(),
            "{format}: same lines, same documents and ids"
        );

        // Node restart: the node re-appends the last lines, then all of them.
        let tail = &lines[lines.len() - 2..];
        a.append("20250624/2", &to_lines(tail));
        let again = a.sync();
        assert_eq!(again["inserted"], 0, "{format}: {again}");
        a.append("20250624/2", &to_lines(lines));
        let again = a.sync();
        assert_eq!(again["inserted"], 0, "{format}: {again}");
        assert_eq!(again["duplicates"], docs, "{format}: {again}");
        assert_eq!(a.count(), docs, "{format}");
        assert_eq!(a.docs(), b.docs(), "{format}");
    }
}

/// `decimals: [legs.*.qty]` over a line whose `legs` is an empty array: nothing to convert, the
/// line is fine and must be stored (not dead-lettered as "missing").
#[test]
fn jsonl_wildcard_decimal_over_an_empty_array_stores_the_line() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "jsonl_empty_array",
        "jsonl",
        "id: {fields: [seq]}\ndecimals: [legs.*.qty]\n",
    );
    p.write(
        "20250624/2",
        b"{\"seq\":1,\"legs\":[{\"qty\":\"1.50\"}]}\n{\"seq\":2,\"legs\":[]}\n",
    );
    let report = p.sync();
    let rejects = p.docs_of("docs_rejects");
    assert_eq!(report["dead_lettered"], 0, "{report}\n{rejects:#?}");
    assert_eq!(report["inserted"], 2, "{report}");
    assert_eq!(p.count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Idempotence: SIGKILL during sync

/// Rounds of: new trade lines on the host, `pond run` of the chain SIGKILLed at a random instant
/// (before, during or after the mongo stage), then a rerun. After every kill MongoDB holds only
/// documents of lines written so far, with their expected `_id`s; after every rerun exactly one
/// document per line, and the report counts what the rerun added.
#[test]
fn sync_killed_at_random_instants_then_rerun_stores_each_line_once() {
    let seed = support::seed("MONGO_CRASH_SEED", 0x6d6f_6e67_6f00_0001);
    let mut rng = SplitMix64(seed);
    let server = mongo::shared();
    const ROUNDS: u64 = 12;
    const PER_ROUND: u64 = 300;
    const FILE: &str = "/logs/hl/20250624/3";
    let total = ROUNDS * PER_ROUND;

    // The expected ids: the same lines through another pond, in one go.
    let reference = Pipeline::new(server, "kill_reference", "hyperliquid/node_trades", "");
    reference.write("20250624/3", &trade_lines(0, total));
    assert_eq!(reference.sync()["inserted"], total);
    let expected = ids_by_time(&reference.docs());
    let times: Vec<i64> = (0..total).map(mongo::trade_time_ns).collect();
    assert_eq!(expected.len() as u64, total);

    let p = Pipeline::new(
        server,
        "kill",
        "hyperliquid/node_trades",
        "batch_size: 3\nmax_in_flight: 2\n",
    );
    let mut outcomes = BTreeMap::<&str, usize>::new();
    // How long a round's sync takes, learnt from the runs that finished and the reruns that did
    // a whole round's work: the kill instants are drawn from 0..125% of it.
    let mut round_ms = 150u64;
    let mut size = 0u64;
    for round in 0..ROUNDS {
        let chunk = trade_lines(round * PER_ROUND, PER_ROUND);
        if round == 0 {
            p.write("20250624/3", &chunk);
        } else {
            p.append("20250624/3", &chunk);
        }
        let previous_size = size;
        size += chunk.len() as u64;
        let lines_so_far = (round + 1) * PER_ROUND;
        let before = p.count();
        assert_eq!(before, round * PER_ROUND);

        let delay = rng.below(round_ms * 5 / 4 + 1);
        let ctx = format!("seed {seed:#x}, round {round}, kill after {delay} ms");
        let run = support::kill_after(
            p.pond.cmd(&["run", LOGFILE_NODE, "sync", "--json"]),
            Duration::from_millis(delay),
        );
        let finished = run.finished_after.is_some();
        if let Some(took) = run.finished_after {
            round_ms = (took.as_millis() as u64).max(20);
        }
        let status = run.status;
        // An insert the killed process had sent may still be applied: wait until the count
        // settles.
        let mut settled = p.count();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = p.count();
            if now == settled {
                break;
            }
            settled = now;
        }

        // Only lines written so far, each under its expected id.
        let stored = ids_by_time(&p.docs());
        let allowed: BTreeSet<i64> = times[..lines_so_far as usize].iter().copied().collect();
        for (ns, id) in &stored {
            assert!(
                allowed.contains(ns),
                "{ctx}: a document for no written line"
            );
            assert_eq!(expected.get(ns), Some(id), "{ctx}: unexpected _id");
        }
        let after_kill = stored.len() as u64;
        let cursor = p.status()["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == FILE)
            .map_or(0, |f| f["cursor"].as_u64().unwrap());
        let outcome = if finished {
            "finished"
        } else if cursor == size {
            "killed after the commit"
        } else if after_kill == before {
            "killed, nothing stored"
        } else if after_kill == lines_so_far {
            "killed after storing everything, before the commit"
        } else {
            "killed mid-sync"
        };
        // A killed run commits all or nothing: the cursor is where the last run left it.
        assert!(
            cursor == size || cursor == previous_size,
            "{ctx}: cursor {cursor}, expected {previous_size} or {size}"
        );

        let rerun_start = Instant::now();
        let report = p.sync();
        let ms = rerun_start.elapsed().as_millis() as u64;
        p.assert_trades_exact(lines_so_far, &ctx);
        assert_eq!(
            ids_by_time(&p.docs()),
            times[..lines_so_far as usize]
                .iter()
                .map(|ns| (*ns, expected[ns].clone()))
                .collect::<BTreeMap<_, _>>(),
            "{ctx}: ids"
        );
        assert_eq!(
            report["inserted"],
            lines_so_far - after_kill,
            "{ctx}: {report}"
        );
        let resent = if cursor == size {
            0
        } else {
            after_kill - before
        };
        assert_eq!(report["duplicates"], resent, "{ctx}: {report}");
        assert_eq!(p.file_status(FILE)["cursor"], size, "{ctx}");
        if report["inserted"] == PER_ROUND {
            round_ms = ms.max(20);
        }
        eprintln!("{ctx}: {outcome} ({status}); rerun: {report}");
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("kill outcomes: {outcomes:?}");
    assert!(
        outcomes.contains_key("killed mid-sync"),
        "no kill landed mid-sync: {outcomes:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Faults: fail points

/// Disarms the fail point when dropped, even when the test fails.
struct FailPointGuard<'a>(&'a mongo::Server);

impl Drop for FailPointGuard<'_> {
    fn drop(&mut self) {
        let client = self.0.client();
        let _ = mongo::block_on(
            client
                .database("admin")
                .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" }),
        );
    }
}

/// A trades pipeline whose connections name themselves `app` (fail points are scoped to it).
/// `heartbeatFrequencyMS=500`: after a ShutdownInProgress error the driver marks the server
/// unknown until a heartbeat finds it again; with the default 10 s heartbeat that alone takes
/// about 30 s against SecantusDB, which is the driver's business, not the factory's.
fn fault_pipeline(test: &str, extra: &str) -> (Pipeline<'static>, String) {
    let server = mongo::shared();
    let app = format!("pond_{test}_{}", std::process::id());
    let uri = format!("{}&appName={app}&heartbeatFrequencyMS=500", server.uri);
    let mut p = Pipeline::with_uri(server, test, &uri, "hyperliquid/node_trades", extra);
    p.limit = Duration::from_secs(20);
    (p, app)
}

/// `insert` fails three times (after two successes) with ShutdownInProgress labelled
/// RetryableWriteError: the driver retries once, the sink retries the rest. Every line is stored
/// once, and the report counts the sink's retries.
#[test]
fn retryable_error_fail_point_during_sync_is_retried_and_stores_each_line_once() {
    let _lock = fail_point_lock();
    let (p, app) = fault_pipeline("fail91", "batch_size: 50\nmax_in_flight: 1\n");
    const N: u64 = 600;
    p.write("20250624/3", &trade_lines(0, N));
    let _guard = FailPointGuard(p.server);
    p.server.fail_point(
        doc! { "skip": 2, "times": 3 }.into(),
        doc! {
            "failCommands": ["insert"],
            "errorCode": 91,
            "errorLabels": ["RetryableWriteError"],
            "appName": &app,
        },
    );
    let report = p.sync();
    p.assert_trades_exact(N, "after the fail point");
    assert_eq!(report["inserted"], N, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert!(
        report["retries"].as_u64().unwrap() > 0,
        "3 failures in a row exceed the driver's one retry: {report}"
    );
    assert_eq!(
        p.file_status("/logs/hl/20250624/3")["last_error"],
        Value::Null
    );
}

/// The server drops the connection on `insert` three times (after two successes): network
/// errors, retried; every line stored once. (A single drop is retried inside the driver and
/// does not show in `retries`.)
#[test]
fn closed_connection_fail_point_during_sync_is_retried_and_stores_each_line_once() {
    let _lock = fail_point_lock();
    let (p, app) = fault_pipeline("fail_close", "batch_size: 50\nmax_in_flight: 1\n");
    const N: u64 = 600;
    p.write("20250624/3", &trade_lines(0, N));
    let _guard = FailPointGuard(p.server);
    p.server.fail_point(
        doc! { "skip": 2, "times": 3 }.into(),
        doc! { "failCommands": ["insert"], "closeConnection": true, "appName": &app },
    );
    let report = p.sync();
    p.assert_trades_exact(N, "after the closed connections");
    assert_eq!(
        report["inserted"].as_u64().unwrap() + report["duplicates"].as_u64().unwrap(),
        N,
        "{report}"
    );
    assert!(report["retries"].as_u64().unwrap() > 0, "{report}");
}

/// A sync that has been running longer than `retry_deadline_secs` meets a short blip (three
/// dropped connections): the deadline bounds how long one failure is retried, so the blip is
/// retried and the sync completes.
#[test]
fn retry_deadline_counts_from_the_failure_not_from_the_start_of_the_sync() {
    let _lock = fail_point_lock();
    let (p, app) = fault_pipeline(
        "deadline_from_failure",
        "batch_size: 1\nmax_in_flight: 1\nretry_deadline_secs: 3\n",
    );
    const N: u64 = 150;
    p.write("20250624/3", &trade_lines(0, N));
    let server = p.server;
    let _guard = FailPointGuard(server);
    // Every insert takes 40 ms: the sync runs about 6 s, past its 3 s deadline.
    server.fail_point(
        "alwaysOn".into(),
        doc! {
            "failCommands": ["insert"],
            "blockConnection": true,
            "blockTimeMS": 40,
            "appName": &app,
        },
    );
    let out = std::thread::scope(|s| {
        let sync = s.spawn(|| p.run(&["run", LOGFILE_NODE, "sync", "--json"]));
        std::thread::sleep(Duration::from_secs(4));
        assert!(
            !sync.is_finished() && p.count() < N,
            "the sync ended before the deadline passed; the test needs a longer one"
        );
        // The blip (replaces the slow-down).
        server.fail_point(
            doc! { "times": 3 }.into(),
            doc! { "failCommands": ["insert"], "closeConnection": true, "appName": &app },
        );
        sync.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    });
    assert!(
        out.status.success(),
        "a blip 4 s into a sync with retry_deadline_secs: 3 was not retried: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.assert_trades_exact(N, "after the blip");
}

// ---------------------------------------------------------------------------------------------
// Bad input: dead letters

/// Each bad line goes to the dead-letter collection with its pond path, offset, first 4 KiB and
/// a reason naming the problem; everything else is stored; the run exits 0 and counts them.
#[test]
fn bad_lines_are_dead_lettered_with_reasons_and_the_rest_is_stored() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "bad_input",
        "jsonl",
        "id: {fields: [id]}\ntimestamp: {field: ts, format: rfc3339}\ndecimals: [price]\ndead_letter: bad_lines\nbatch_size: 4\n",
    );
    let good = |id: u32| {
        format!(r#"{{"id":{id},"ts":"2025-06-24T02:56:36.{id:03}Z","price":"{id}.25"}}"#)
            .into_bytes()
    };
    let mut huge = br#"{"id":100,"ts":"2025-06-24T02:56:36Z","price":"1","blob":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 17 << 20));
    huge.extend_from_slice(b"\"}");
    let bad = |text: &[u8], needles: &'static [&'static str]| (text.to_vec(), Some(needles));
    let lines: Vec<(Vec<u8>, Option<&[&str]>)> = vec![
        (good(1), None),
        bad(
            br#"{"id":2,"ts":"2025-06-24T02:56:36Z","price":"1""#,
            &["malformed JSON"],
        ),
        bad(
            b"{\"id\":3,\"ts\":\"2025-06-24T02:56:36Z\",\"price\":\"1\",\"note\":\"caf\xe9\"}",
            &["UTF-8"],
        ),
        bad(b"", &["empty"]),
        (good(4), None),
        (huge, Some(&["16777216"])),
        bad(
            br#"{"id":6,"ts":"2025-06-24T02:56:36Z","price":1.5}"#,
            &["price", "decimal"],
        ),
        bad(
            br#"{"id":7,"ts":1750733796,"price":"1"}"#,
            &["ts", "timestamp"],
        ),
        bad(
            br#"{"id":8,"ts":"2025-06-24T02:56:36Z","price":"1,5"}"#,
            &["price", "1,5"],
        ),
        bad(
            br#"{"id":9,"ts":"yesterday","price":"1"}"#,
            &["ts", "yesterday"],
        ),
        bad(
            br#"{"ts":"2025-06-24T02:56:36Z","price":"1"}"#,
            &["id", "missing"],
        ),
        bad(br#"[1,2]"#, &["object"]),
        (good(10), None),
        (good(11), None),
    ];
    let mut file = Vec::new();
    let mut offsets = Vec::new();
    for (line, _) in &lines {
        offsets.push(file.len() as u64);
        file.extend_from_slice(line);
        file.push(b'\n');
    }
    p.write("20250624/2", &file);
    let report = p.sync();
    let n_bad = lines.iter().filter(|(_, b)| b.is_some()).count() as u64;
    let n_good = lines.len() as u64 - n_bad;
    assert_eq!(report["dead_lettered"], n_bad, "{report}");
    assert_eq!(report["inserted"], n_good, "{report}");
    assert_eq!(p.count(), n_good);
    let stored_ids: BTreeSet<i64> = p.docs().iter().map(|d| int(d, "id").unwrap()).collect();
    assert_eq!(stored_ids, BTreeSet::from([1, 4, 10, 11]));

    let dead = p.docs_of("bad_lines");
    assert_eq!(dead.len() as u64, n_bad, "{dead:#?}");
    for ((line, needles), offset) in lines.iter().zip(&offsets) {
        let Some(needles) = needles else { continue };
        let letter = dead
            .iter()
            .find(|d| d.get_i64("offset") == Ok(*offset as i64))
            .unwrap_or_else(|| panic!("no dead letter at offset {offset}: {dead:#?}"));
        assert_eq!(letter.get_str("pond_path"), Ok("/logs/hl/20250624/2"));
        assert_eq!(letter.get_i64("line_len"), Ok(line.len() as i64));
        let prefix = &line[..line.len().min(4096)];
        match letter.get("raw") {
            Some(Bson::String(text)) => assert_eq!(text.as_bytes(), prefix, "raw at {offset}"),
            Some(Bson::Binary(binary)) => {
                assert!(std::str::from_utf8(prefix).is_err(), "{letter}");
                assert_eq!(binary.bytes, prefix, "raw at {offset}");
            }
            other => panic!("raw at {offset}: {other:?}"),
        }
        let reason = letter.get_str("reason").unwrap();
        for needle in *needles {
            assert!(
                reason.contains(needle),
                "reason for the line at {offset} should name {needle:?}: {reason}"
            );
        }
    }
    // Nothing is retried or re-dead-lettered by a rerun.
    let again = p.sync();
    assert_eq!(again["dead_lettered"], 0, "{again}");
    assert_eq!(p.docs_of("bad_lines").len() as u64, n_bad);
}

// ---------------------------------------------------------------------------------------------
// Partial lines, status, reset, dry runs

/// A partial last line (no newline yet) is not stored; `status` shows the bytes it holds as
/// lag; once its newline arrives it is stored.
#[test]
fn partial_last_line_waits_for_its_newline_and_status_shows_the_lag() {
    let server = mongo::shared();
    let p = Pipeline::new(server, "partial", "hyperliquid/node_trades", "");
    const FILE: &str = "/logs/hl/20250624/2";
    let lines = trade_lines(0, 5);
    let next = trade_line(5);
    let (head, tail) = next.as_bytes().split_at(next.len() / 2);
    let mut bytes = lines.clone();
    bytes.extend_from_slice(head);
    p.write("20250624/2", &bytes);
    let report = p.sync();
    assert_eq!(report["inserted"], 5, "{report}");
    assert_eq!(
        report["files"][0],
        serde_json::json!({"path": FILE, "cursor": lines.len(), "size": bytes.len()})
    );
    let row = p.file_status(FILE);
    assert_eq!(row["size"], bytes.len(), "{row}");
    assert_eq!(row["cursor"], lines.len(), "{row}");
    assert_eq!(row["lag"], head.len(), "{row}");
    assert_eq!(row["last_error"], Value::Null, "{row}");
    // Still partial: nothing new.
    let again = p.sync();
    assert_eq!(again["inserted"], 0, "{again}");
    assert_eq!(again["dead_lettered"], 0, "{again}");
    p.assert_trades_exact(5, "partial line pending");

    let mut rest = tail.to_vec();
    rest.push(b'\n');
    p.append("20250624/2", &rest);
    let done = p.sync();
    assert_eq!(done["inserted"], 1, "{done}");
    p.assert_trades_exact(6, "after the newline");
    let row = p.file_status(FILE);
    assert_eq!(row["lag"], 0, "{row}");
    assert_eq!(row["cursor"], row["size"], "{row}");
}

/// `reset --offset 0` re-sends everything (duplicates, no new documents); a later line start
/// re-sends from there; an offset inside a line or past the end is refused and changes nothing.
#[test]
fn reset_resends_from_a_line_start_and_refuses_other_offsets() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "reset",
        "hyperliquid/node_trades",
        "batch_size: 4\n",
    );
    const FILE: &str = "/logs/hl/20250624/2";
    let bytes = trade_lines(0, 10);
    p.write("20250624/2", &bytes);
    assert_eq!(p.sync()["inserted"], 10);
    let size = bytes.len() as u64;
    let txns = p.pond.txns();

    for (offset, needle) in [("5", "not the start of a line"), ("99999999", "beyond")] {
        let out = p.run(&["run", MONGO_NODE, "reset", FILE, "--offset", offset]);
        assert!(!out.status.success(), "reset to {offset} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_one_line_error(&stderr, &[FILE, offset, needle]);
    }
    assert_eq!(p.pond.txns(), txns, "a refused reset committed");
    assert_eq!(p.file_status(FILE)["cursor"], size);

    p.ok(&["run", MONGO_NODE, "reset", FILE, "--offset", "0"]);
    let row = p.file_status(FILE);
    assert_eq!(
        (row["cursor"].as_u64(), row["lag"].as_u64()),
        (Some(0), Some(size))
    );
    let report = p.mongo_sync();
    assert_eq!(report["inserted"], 0, "{report}");
    assert_eq!(report["duplicates"], 10, "{report}");
    p.assert_trades_exact(10, "after reset to 0");
    assert_eq!(p.file_status(FILE)["cursor"], size);

    // From the start of line 7: three lines again.
    let line7 = trade_lines(0, 7).len();
    p.ok(&[
        "run",
        MONGO_NODE,
        "reset",
        FILE,
        "--offset",
        &line7.to_string(),
    ]);
    let report = p.mongo_sync();
    assert_eq!(report["duplicates"], 3, "{report}");
    assert_eq!(report["inserted"], 0, "{report}");
    p.assert_trades_exact(10, "after reset to line 7");
}

/// `sync --dry-run` parses and counts but writes nothing: no documents, no dead letters, no
/// indexes, no cursor, no pond transaction. A real sync then stores what it counted.
#[test]
fn dry_run_counts_but_writes_nothing() {
    let server = mongo::shared();
    let p = Pipeline::unchained(
        server,
        "dry_run",
        "hyperliquid/node_trades",
        "batch_size: 7\nindexes: [ { keys: { time: 1 } } ]\n",
    );
    const FILE: &str = "/logs/hl/20250624/2";
    let mut bytes = trade_lines(0, 20);
    bytes.extend_from_slice(b"not json\n");
    p.write("20250624/2", &bytes);
    p.mirror();
    let txns = p.pond.txns();
    let report = p.json(&["run", MONGO_NODE, "sync", "--dry-run"]);
    assert_eq!(report["dry_run"], true, "{report}");
    assert_eq!(report["inserted"], 20, "{report}");
    assert_eq!(report["dead_lettered"], 1, "{report}");
    assert_eq!(report["files"][0]["cursor"], 0, "{report}");
    assert_eq!(
        server.collections(&p.db),
        Vec::<String>::new(),
        "a dry run wrote to MongoDB"
    );
    assert_eq!(p.pond.txns(), txns, "a dry run committed");
    assert_eq!(p.file_status(FILE)["cursor"], 0);

    let real = p.mongo_sync();
    assert_eq!(real["inserted"], 20, "{real}");
    assert_eq!(real["dead_lettered"], 1, "{real}");
    p.assert_trades_exact(20, "after the real sync");
}

/// A dry run of the chain (`pond run LOGFILE sync --dry-run`) writes nothing to MongoDB either,
/// even when the pond holds lines the mongo node has not sent yet.
#[test]
fn dry_run_of_the_chain_writes_nothing_to_mongodb() {
    let server = mongo::shared();
    let p = Pipeline::unchained(server, "dry_run_chain", "hyperliquid/node_trades", "");
    const FILE: &str = "/logs/hl/20250624/2";
    p.write("20250624/2", &trade_lines(0, 20));
    p.mirror();
    p.set_logfile(true, true);
    let txns = p.pond.txns();
    let report = p.json(&["run", LOGFILE_NODE, "sync", "--dry-run"]);
    assert_eq!(
        server.collections(&p.db),
        Vec::<String>::new(),
        "a dry run wrote to MongoDB: {report}"
    );
    assert_eq!(p.file_status(FILE)["cursor"], 0, "{report}");
    assert_eq!(p.pond.txns(), txns, "a dry run committed: {report}");
}

// ---------------------------------------------------------------------------------------------
// mknod

/// Bad configs are refused by `mknod` with one line naming the field; nothing is created.
#[test]
fn mknod_rejects_bad_configs_with_one_line_naming_the_field() {
    let pond = TestPond::new();
    let config = |uri: &str, db: &str, format: &str, extra: &str| {
        format!(
            "source: \"logs/**\"\nmongodb:\n  uri: \"{uri}\"\n  database: {db}\n  collection: docs\nformat: {format}\n{extra}"
        )
    };
    let uri = "mongodb://127.0.0.1:9/?directConnection=true";
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "not a MongoDB URI",
            config("http://127.0.0.1:9/", "ok", "jsonl", ""),
            vec!["mongodb.uri"],
        ),
        (
            "URI without a host",
            config("mongodb://", "ok", "jsonl", ""),
            vec!["mongodb.uri"],
        ),
        (
            "database name with a dot",
            config(uri, "a.b", "jsonl", ""),
            vec!["mongodb.database", "a.b"],
        ),
        (
            "database name with a slash",
            config(uri, "\"a/b\"", "jsonl", ""),
            vec!["mongodb.database", "a/b"],
        ),
        (
            "database name too long",
            config(uri, &"d".repeat(64), "jsonl", ""),
            vec!["mongodb.database"],
        ),
        (
            "unknown format",
            config(uri, "ok", "csv", ""),
            vec!["format", "csv"],
        ),
        (
            "unknown preset",
            config(uri, "ok", "hyperliquid/node_orders", ""),
            vec!["format", "hyperliquid/node_orders"],
        ),
        (
            "unknown key",
            config(uri, "ok", "jsonl", "batch_sise: 10\n"),
            vec!["batch_sise"],
        ),
        (
            "unknown key under mongodb",
            config(uri, "ok", "jsonl", "")
                .replace("collection: docs", "collection: docs\n  colection: x"),
            vec!["colection"],
        ),
        (
            "jsonl options with a preset",
            config(uri, "ok", "hyperliquid/node_trades", "decimals: [px]\n"),
            vec!["format"],
        ),
        (
            "unknown timestamp format",
            config(uri, "ok", "jsonl", "timestamp: {field: t, format: iso}\n"),
            vec!["timestamp.format", "iso"],
        ),
        (
            "batch size 0",
            config(uri, "ok", "jsonl", "batch_size: 0\n"),
            vec!["batch_size"],
        ),
    ];
    let txns = pond.txns();
    for (case, text, needles) in &cases {
        let path = pond.host_file("bad.yaml", text.as_bytes());
        let out = pond.output(&[
            "mknod",
            "mongo",
            "/etc/m",
            "--config-path",
            path.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{case}: accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{case}: {}", stderr.trim());
        assert_one_line_error(&stderr, needles);
    }
    assert_eq!(pond.txns(), txns, "a refused mknod committed");
    assert!(
        !pond.output(&["list", "/etc/m"]).status.success(),
        "the node exists"
    );
    // The good config is accepted (the failures above were the config's).
    let path = pond.host_file("good.yaml", config(uri, "ok", "jsonl", "").as_bytes());
    pond.ok(&[
        "mknod",
        "mongo",
        "/etc/m",
        "--config-path",
        path.to_str().unwrap(),
    ]);
}

/// `timestamp` formats other than RFC 3339: naive UTC and epoch seconds, milliseconds and
/// nanoseconds all become the entry's own instant (date plus `_ns`).
#[test]
fn jsonl_naive_and_epoch_timestamps_are_the_entries_own_time() {
    let server = mongo::shared();
    let ns = 1_750_733_796_172_847_427i128;
    let cases = [
        ("naive_utc", r#""2025-06-24T02:56:36.172847427""#, ns),
        ("epoch_seconds", "1750733796", 1_750_733_796_000_000_000),
        ("epoch_millis", "1750733796172", 1_750_733_796_172_000_000),
        ("epoch_nanos", "1750733796172847427", ns),
    ];
    for (format, value, expected) in cases {
        let p = Pipeline::new(
            server,
            &format!("ts_{format}"),
            "jsonl",
            &format!("id: {{fields: [k]}}\ntimestamp: {{field: t, format: {format}}}\n"),
        );
        p.write(
            "20250624/2",
            format!("{{\"k\":1,\"t\":{value}}}\n").as_bytes(),
        );
        let report = p.sync();
        assert_eq!(report["inserted"], 1, "{format}: {report}");
        let docs = p.docs();
        assert_time(&docs[0], "t", expected);
    }
}

/// A unique index of the user's on another field: a line whose document collides on it is not
/// "already stored" (its `_id` is new), so it must not vanish as a duplicate; it is
/// dead-lettered with the server's reason.
#[test]
fn unique_index_violation_on_another_field_is_dead_lettered_not_counted_as_duplicate() {
    let server = mongo::shared();
    let p = Pipeline::new(
        server,
        "unique_index",
        "jsonl",
        "id: {fields: [seq]}\nindexes: [ { keys: { name: 1 }, unique: true, name: name_unique } ]\n",
    );
    p.write(
        "20250624/2",
        b"{\"seq\":1,\"name\":\"a\"}\n{\"seq\":2,\"name\":\"a\"}\n{\"seq\":3,\"name\":\"b\"}\n",
    );
    let report = p.sync();
    let rejects = p.docs_of("docs_rejects");
    assert_eq!(p.count(), 2, "{report}");
    assert_eq!(
        report["dead_lettered"], 1,
        "seq 2 is neither stored nor dead-lettered: {report}\n{rejects:#?}"
    );
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(rejects.len(), 1, "{rejects:#?}");
    assert_eq!(int(&rejects[0], "offset"), Some(21));
}

// Regression: two ponds (two hosts) feeding one collection with `id: position` collided: each
// pond's first file has the same node id and the same offsets. Position ids now start with
// the pond's instance id: both ponds' lines are stored.
#[test]
fn position_ids_of_two_ponds_feeding_one_collection_do_not_collide() {
    let server = mongo::shared();
    let lines = to_lines(
        &(0..20)
            .map(|i| format!("{{\"n\":{i}}}"))
            .collect::<Vec<_>>(),
    );
    let ponds: Vec<Pipeline> = (0..2)
        .map(|_| Pipeline::new(server, "two_ponds_one_collection", "jsonl", ""))
        .collect();
    for p in &ponds {
        p.write("20250101/0", &lines);
        assert_eq!(p.sync()["inserted"], 20);
    }
    assert_eq!(ponds[0].count(), 40);
    let ids: BTreeSet<String> = ponds[0]
        .docs()
        .iter()
        .map(|d| d.get_str("_id").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 40);
    assert!(ids.iter().all(|id| id.split(':').count() == 3), "{ids:?}");
}
