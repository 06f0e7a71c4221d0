#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

const AT: LineAt = LineAt {
    source: "7",
    offset: 1234,
};

fn samples(name: &str) -> Vec<String> {
    let path = format!(
        "{}/../../testdata/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn one(format: &Format, line: &str) -> Document {
    let mut docs = format.transform(line.as_bytes(), AT).unwrap();
    assert_eq!(docs.len(), 1);
    docs.remove(0).to_document().unwrap()
}

#[test]
fn naive_utc_times_parse_with_3_to_9_fraction_digits() {
    let ns = parse_datetime("2025-06-24T02:56:36.172847427", true).unwrap();
    assert_eq!(ns, 1_750_733_796_172_847_427);
    assert_eq!(
        parse_datetime("2025-06-24T02:56:36.172", true).unwrap(),
        1_750_733_796_172_000_000
    );
    assert_eq!(parse_datetime("1970-01-01T00:00:00", true).unwrap(), 0);
    assert_eq!(
        parse_datetime("2024-02-29T23:59:59.5Z", false).unwrap(),
        1_709_251_199_500_000_000
    );
    assert_eq!(
        parse_datetime("2025-01-01T02:00:00+02:00", false).unwrap(),
        parse_datetime("2025-01-01T00:00:00Z", false).unwrap()
    );
    for bad in [
        "2025-02-30T00:00:00",
        "2025-06-24 02:56",
        "2025-06-24T02:56:36.",
        "2025-06-24T02:56:36.1234567890",
        "2025-06-24T02:56:36Z",
    ] {
        assert!(parse_datetime(bad, true).is_none(), "{bad}");
    }
}

/// The calendar's edges: leap years by 4, 100 and 400, a leap second, before the epoch, the
/// first and last four-digit years, months and days out of range.
#[test]
fn naive_utc_times_follow_the_gregorian_calendar_at_its_edges() {
    for (text, ns) in [
        ("2000-02-29T12:00:00", 951_825_600_000_000_000),
        ("1900-03-01T00:00:00", -2_203_891_200_000_000_000),
        ("1969-12-31T23:59:59.999999999", -1),
        ("2016-12-31T23:59:60", 1_483_228_800_000_000_000),
        ("0000-01-01T00:00:00", -62_167_219_200_000_000_000),
        ("9999-12-31 23:59:59", 253_402_300_799_000_000_000),
    ] {
        assert_eq!(parse_datetime(text, true), Some(ns), "{text}");
    }
    for bad in [
        "1900-02-29T00:00:00",
        "2100-02-29T00:00:00",
        "2025-04-31T00:00:00",
        "2025-13-01T00:00:00",
        "2025-00-01T00:00:00",
        "2025-01-00T00:00:00",
        "2025-01-01T24:00:00",
        "2025-01-01T00:60:00",
        "2025-01-01T00:00:61",
        "2025-01-01T00:00:00Z",
    ] {
        assert!(parse_datetime(bad, true).is_none(), "{bad}");
    }
    assert_eq!(
        parse_datetime("2025-01-01T00:00:00-05:30", false),
        parse_datetime("2025-01-01T05:30:00Z", false)
    );
    assert_eq!(parse_datetime("2025-01-01T00:00:00", false), None);
}

#[test]
fn trades_get_exact_decimals_dates_and_a_natural_key() {
    let lines = samples("node_trades.jsonl");
    let doc = one(&Format::HlTrades, &lines[0]);
    assert_eq!(doc.get_decimal128("px").unwrap().to_string(), "2393.9");
    assert_eq!(doc.get_decimal128("sz").unwrap().to_string(), "0.1539");
    let side = doc.get_array("side_info").unwrap()[0]
        .as_document()
        .unwrap();
    assert_eq!(
        side.get_decimal128("start_pos").unwrap().to_string(),
        "1166.565307356"
    );
    assert_eq!(
        doc.get_datetime("time").unwrap().timestamp_millis(),
        1_750_733_796_172
    );
    assert_eq!(doc.get_i64("time_ns").unwrap(), 1_750_733_796_172_847_427);
    let id = doc.get_str("_id").unwrap().to_string();
    assert_eq!(id.len(), 32);
    // Deterministic: the same line (a node restart re-appending it) gets the same id, at any
    // offset; a different trade gets a different one.
    let again = Format::HlTrades
        .transform(
            lines[0].as_bytes(),
            LineAt {
                source: "9",
                offset: 0,
            },
        )
        .unwrap();
    assert_eq!(again[0].to_document().unwrap().get_str("_id").unwrap(), id);
    let ids: std::collections::HashSet<String> = lines
        .iter()
        .map(|l| {
            one(&Format::HlTrades, l)
                .get_str("_id")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), lines.len());
}

#[test]
fn millisecond_era_trade_lines_parse() {
    let lines = samples("node_trades.jsonl");
    let doc = one(&Format::HlTrades, &lines[3]);
    assert_eq!(doc.get_i64("time_ns").unwrap() % 1_000_000, 0);
}

#[test]
fn fills_by_block_make_one_document_per_fill() {
    let lines = samples("node_fills_by_block.jsonl");
    let docs = Format::HlFillsByBlock
        .transform(lines[0].as_bytes(), AT)
        .unwrap();
    assert!(!docs.is_empty());
    let first = docs[0].to_document().unwrap();
    // Small integers come out as Int32, large ones as Int64: MongoDB compares them as numbers.
    let number = first.get("block_number").unwrap();
    assert_eq!(
        number.as_i64().or(number.as_i32().map(i64::from)),
        Some(1_052_527_672)
    );
    assert_eq!(
        first.get_datetime("block_time").unwrap().timestamp_millis(),
        1_782_636_233_257
    );
    assert_eq!(
        first.get_datetime("time").unwrap().timestamp_millis(),
        1_782_636_233_257
    );
    assert_eq!(first.get_decimal128("px").unwrap().to_string(), "72.153");
    assert!(first.get_str("user").unwrap().starts_with("0x"));
    // The fixture line without a block header still yields its fills.
    let headless = Format::HlFillsByBlock
        .transform(lines[1].as_bytes(), AT)
        .unwrap();
    assert!(!headless.is_empty());
    assert!(
        headless[0]
            .to_document()
            .unwrap()
            .get("block_number")
            .is_none()
    );
    // Both sides of one trade share tid but differ by user, so their ids differ.
    let ids: std::collections::HashSet<String> = headless
        .iter()
        .map(|d| d.to_document().unwrap().get_str("_id").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), headless.len());
}

#[test]
fn fills_lines_are_user_fill_pairs() {
    let line = r#"["0xabc",{"coin":"BTC","px":"1.5","sz":"2","time":1700000000123,"tid":42,"fee":"0.01"}]"#;
    let doc = one(&Format::HlFills, line);
    assert_eq!(doc.get_str("user").unwrap(), "0xabc");
    assert_eq!(doc.get_decimal128("fee").unwrap().to_string(), "0.01");
    assert_eq!(
        doc.get_datetime("time").unwrap().timestamp_millis(),
        1_700_000_000_123
    );
}

#[test]
fn jsonl_position_ids_timestamps_and_decimals() {
    let format = Format::Jsonl(Jsonl {
        id: IdSpec::Position,
        timestamp: Some((FieldPath::parse("ts").unwrap(), TimeFormat::Rfc3339)),
        decimals: vec![FieldPath::parse("level").unwrap()],
        extended_json: false,
    });
    let doc = one(
        &format,
        r#"{"ts":"2025-10-20T08:18:50.905123Z","level":"812.40","site":"c"}"#,
    );
    assert_eq!(doc.get_str("_id").unwrap(), "7:1234");
    assert_eq!(doc.get_decimal128("level").unwrap().to_string(), "812.40");
    assert_eq!(doc.get_i64("ts_ns").unwrap() % 1_000_000, 123_000);
}

fn jsonl(id: IdSpec, extended_json: bool) -> Format {
    Format::Jsonl(Jsonl {
        id,
        timestamp: None,
        decimals: Vec::new(),
        extended_json,
    })
}

// Regression: a line's own `_id` was replaced by the position id. Now it is the key with
// `id: line`, and a reason to dead-letter the line otherwise; never replaced.
#[test]
fn a_lines_own_id_is_kept_with_id_line_and_refused_otherwise() {
    let line = br#"{"_id":5,"v":1}"#;
    let doc = one(
        &jsonl(IdSpec::Line, false),
        std::str::from_utf8(line).unwrap(),
    );
    assert_eq!(doc.get_i32("_id").unwrap(), 5);
    assert_eq!(doc.get_i32("v").unwrap(), 1);
    for format in [
        jsonl(IdSpec::Position, false),
        jsonl(IdSpec::Fields(vec![FieldPath::parse("v").unwrap()]), false),
    ] {
        let err = format.transform(line, AT).unwrap_err();
        assert!(err.0.contains("has its own _id"), "{}", err.0);
    }
    let err = jsonl(IdSpec::Line, false)
        .transform(br#"{"v":1}"#, AT)
        .unwrap_err();
    assert!(err.0.contains("no _id"), "{}", err.0);
    let err = Format::HlTrades
        .transform(
            format!(r#"{{"_id":1,{}"#, &samples("node_trades.jsonl")[0][1..]).as_bytes(),
            AT,
        )
        .unwrap_err();
    assert!(err.0.contains("own _id"), "{}", err.0);
}

// Regression: integers past 64 bits were rounded doubles (99999999999999999999999999 stored as
// 1e+26) or, just past i64, dead-lettered. Now they are exact Decimal128s.
#[test]
fn integers_past_64_bits_are_stored_exactly() {
    let doc = one(
        &jsonl(IdSpec::Position, false),
        r#"{"big":99999999999999999999999999,"u":18446744073709551615,"small":42}"#,
    );
    assert_eq!(
        doc.get_decimal128("big").unwrap().to_string(),
        "99999999999999999999999999"
    );
    assert_eq!(
        doc.get_decimal128("u").unwrap().to_string(),
        "18446744073709551615"
    );
    assert_eq!(doc.get_i32("small").unwrap(), 42);
}

// Regression: `$oid`, `$date`, `$numberDecimal` keys were read as extended JSON (and a bad
// `$oid` dead-lettered the line). They are plain keys unless `extended_json: true`.
#[test]
fn extended_json_only_when_the_config_asks_for_it() {
    let line = r#"{"x":{"$oid":"zz"},"d":{"$numberDecimal":"1.5"}}"#;
    let doc = one(&jsonl(IdSpec::Position, false), line);
    assert_eq!(
        doc.get_document("x").unwrap().get_str("$oid").unwrap(),
        "zz"
    );
    assert_eq!(
        doc.get_document("d")
            .unwrap()
            .get_str("$numberDecimal")
            .unwrap(),
        "1.5"
    );
    let extended = jsonl(IdSpec::Position, true);
    let doc = one(&extended, r#"{"d":{"$numberDecimal":"1.5"}}"#);
    assert_eq!(doc.get_decimal128("d").unwrap().to_string(), "1.5");
    assert!(extended.transform(line.as_bytes(), AT).is_err());
}

#[test]
fn bad_lines_are_rejected_with_a_reason() {
    let format = Format::Jsonl(Jsonl {
        id: IdSpec::Fields(vec![FieldPath::parse("k").unwrap()]),
        timestamp: Some((FieldPath::parse("t").unwrap(), TimeFormat::EpochMillis)),
        decimals: vec![FieldPath::parse("d").unwrap()],
        extended_json: false,
    });
    let cases: [(&[u8], &str); 8] = [
        (b"", "empty line"),
        (b"{\"k\":1,", "malformed JSON"),
        (b"{\"k\":\"\xff\"}", "not valid UTF-8"),
        (b"[1,2]", "expected a JSON object"),
        (br#"{"k":1,"t":5,"d":12}"#, "decimal field d is a number"),
        (br#"{"k":1,"t":5,"d":"1.2.3"}"#, "not a decimal"),
        (
            br#"{"k":1,"t":"x","d":"1"}"#,
            "timestamp field t is a string",
        ),
        (br#"{"t":5,"d":"1"}"#, "key field k is missing"),
    ];
    for (line, reason) in cases {
        let err = format.transform(line, AT).unwrap_err();
        assert!(
            err.0.contains(reason),
            "{:?}: {}",
            String::from_utf8_lossy(line),
            err.0
        );
    }
}

#[test]
fn oversized_documents_are_rejected() {
    let big = format!(r#"{{"k":1,"blob":"{}"}}"#, "x".repeat(MAX_DOCUMENT + 10));
    let format = jsonl(IdSpec::Position, false);
    let err = format.transform(big.as_bytes(), AT).unwrap_err();
    assert!(err.0.contains("16777216-byte limit"), "{}", err.0);
}

/// What `transform` gave: each document's bytes, or the reject reason.
fn outcome(result: Result<Vec<RawDocumentBuf>>) -> std::result::Result<Vec<Vec<u8>>, String> {
    result
        .map(|docs| docs.into_iter().map(RawDocumentBuf::into_bytes).collect())
        .map_err(|reject| reject.0)
}

/// `transform` (fast path first) and the generic path alone, for a line.
fn both(format: &Format, line: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let fast = outcome(format.transform(line, AT));
    let generic = outcome(format.transform_generic(line, AT));
    (
        format!("{fast:?}").into_bytes(),
        format!("{generic:?}").into_bytes(),
    )
}

#[test]
fn preset_paths_all_parse() {
    assert_eq!(TRADE_PATHS.key.len(), 8);
    assert_eq!(TRADE_PATHS.decimals.len(), 2);
    assert_eq!(TRADE_PATHS.optional_decimals.len(), 1);
    assert_eq!(FILL_PATHS.key.len(), 2);
    assert_eq!(FILL_PATHS.decimals.len(), 2);
    assert_eq!(FILL_PATHS.optional_decimals.len(), 3);
}

/// `parse_decimal` as it was before the bits were packed by hand: the syntax check, then bson.
fn bson_decimal(text: &str) -> Option<bson::Decimal128> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !digits_ok(int)
        || !digits_ok(frac)
        || (body.contains('.') && frac.is_empty())
    {
        return None;
    }
    text.parse().ok()
}

#[test]
fn packed_decimals_equal_bsons_on_edge_cases() {
    let long_fraction = format!("0.{}1", "0".repeat(6175));
    let too_long_fraction = format!("0.{}1", "0".repeat(6176));
    let zeros_after_34 = format!("1{}", "0".repeat(40));
    let many_leading_zeros = format!("{}1.5", "0".repeat(100));
    let cases = [
        "0",
        "-0",
        "0.0",
        "-0.000",
        "00",
        "007",
        "007.50",
        "1",
        "-1",
        "1.50",
        "2393.9",
        "0.1539",
        "-2.6603",
        "1166.565307356",
        "0.0000000594",
        "9999999999999999999999999999999999",
        "-9999999999999999999999999999999999",
        "99999999999999999999999999999999999",
        "1000000000000000000000000000000000",
        "10000000000000000000000000000000000",
        "12345678901234567890123456789012345",
        "0.0000000000000000000000000000000001",
        "0000000000000000000000000000000000000000001",
        "1.000000000000000000000000000000000000",
        "18446744073709551616",
        "340282366920938463463374607431768211455",
        &long_fraction,
        &too_long_fraction,
        &zeros_after_34,
        &many_leading_zeros,
        // Refused by the syntax check, though bson would take some of them.
        "",
        "-",
        ".",
        "1.",
        ".5",
        "-.5",
        "+1",
        "1e5",
        "1E5",
        "NaN",
        "Infinity",
        "inf",
        " 1",
        "1 ",
        "1.2.3",
        "--1",
        "1_000",
        "١",
    ];
    for text in cases {
        assert_eq!(
            decimal::parse_decimal(text).map(|d| d.bytes()),
            bson_decimal(text).map(|d| d.bytes()),
            "{text:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn packed_decimals_equal_bsons(text in prop_oneof![
        "-?[0-9]{1,8}(\\.[0-9]{1,12})?",
        "-?0{0,20}[0-9]{0,40}(\\.[0-9]{0,40}0{0,10})?",
        "[-+.0-9eE]{0,12}",
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i128>().prop_map(|n| n.to_string()),
        any::<u128>().prop_map(|n| format!("{}.{}", n / 1000, n % 1000)),
    ]) {
        prop_assert_eq!(
            decimal::parse_decimal(&text).map(|d| d.bytes()),
            bson_decimal(&text).map(|d| d.bytes())
        );
    }
}

#[test]
fn trade_fast_path_equals_generic_path_on_the_samples() {
    for line in samples("node_trades.jsonl") {
        let fast = trades::transform(line.as_bytes()).expect("the node's shape");
        let generic = Format::HlTrades
            .transform_generic(line.as_bytes(), AT)
            .unwrap();
        assert_eq!(vec![fast.into_bytes()], outcome(Ok(generic)).unwrap());
    }
    // Lines of other presets are not trades: the fast path declines, and the reasons are the
    // generic path's.
    for line in samples("node_fills_by_block.jsonl") {
        assert!(trades::transform(line.as_bytes()).is_none());
        let (fast, generic) = both(&Format::HlTrades, line.as_bytes());
        assert_eq!(fast, generic);
    }
}

/// Regression: a trade line whose document would pass 16 MiB is rejected as before, not stored
/// by the fast path.
#[test]
fn oversized_trade_lines_are_rejected_as_before() {
    let line = samples("node_trades.jsonl")[0].replace(
        r#""hash":"0x"#,
        &format!(r#""hash":"0x{}"#, "0".repeat(MAX_DOCUMENT)),
    );
    assert!(trades::transform(line.as_bytes()).is_none());
    let err = Format::HlTrades.transform(line.as_bytes(), AT).unwrap_err();
    assert!(err.0.contains("16777216-byte limit"), "{}", err.0);
}

/// A JSON string literal holding arbitrary text: escapes, NUL, non-ASCII.
fn json_string() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9@x. \\-\"\\\\/\u{0}\u{1f}\u{7f}é€\u{1F600}]{0,12}"
        .prop_map(|s| serde_json::to_string(&s).unwrap())
}

fn quoted(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    text.prop_map(|s| serde_json::to_string(&s).unwrap())
}

/// A decimal field's text: mostly valid, sometimes not.
fn decimal_text() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => "-?[0-9]{1,6}(\\.[0-9]{1,10})?",
        1 => "-?[0-9]{0,36}(\\.[0-9]{0,6})?",
        1 => "[-+.0-9eE]{0,6}",
    ]
}

/// A `time` as the node writes it, in either era (9 or 3 fraction digits), or with none.
fn node_time() -> impl Strategy<Value = String> {
    (
        1970u32..2100,
        1u32..13,
        1u32..29,
        0u32..24,
        0u32..60,
        0u32..60,
        "(\\.[0-9]{3,9})?",
    )
        .prop_map(|(y, mo, d, h, mi, s, frac)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}")
        })
}

/// A `time` field's text: mostly the node's, sometimes broken.
fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => node_time(),
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?Z?",
        1 => "[-0-9T:.]{0,12}",
    ]
}

/// A JSON integer as the node writes `oid` / `twap_id`, and near misses.
fn integer() -> impl Strategy<Value = String> {
    prop_oneof![
        60 => (0u64..1 << 40).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => Just("2147483647".to_string()),
        1 => Just("2147483648".to_string()),
        1 => Just("-1".to_string()),
        1 => Just("-0".to_string()),
        1 => Just("1.0".to_string()),
        1 => Just("1e3".to_string()),
        1 => Just("9223372036854775808".to_string()),
    ]
}

/// Any other JSON value: what the fast path must hand to the generic path.
fn other_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("1.5".to_string()),
        Just("{}".to_string()),
        Just("[]".to_string()),
        Just("[1,\"a\"]".to_string()),
        Just(r#"{"a":{"b":[null]}}"#.to_string()),
        Just(r#"{"$oid":"0123456789abcdef01234567"}"#.to_string()),
        Just(r#"{"$numberDecimal":"1.5"}"#.to_string()),
        integer(),
        json_string(),
    ]
}

/// A field: usually the node's value kind, sometimes another value, sometimes missing.
fn field(
    name: &'static str,
    usual: impl Strategy<Value = String> + 'static,
) -> impl Strategy<Value = Option<(String, String)>> {
    prop_oneof![
        60 => usual.prop_map(move |v| Some((format!("{name:?}"), v))),
        1 => other_value().prop_map(move |v| Some((format!("{name:?}"), v))),
        1 => Just(None),
    ]
}

/// Fields as a JSON object: in the given order or shuffled, sometimes with an unknown or a
/// repeated key, or a key written with an escape.
fn object(fields: Vec<BoxedStrategy<Option<(String, String)>>>) -> impl Strategy<Value = String> {
    (fields, any::<bool>(), 0u8..40, other_value()).prop_flat_map(
        |(fields, shuffle, twist, extra)| {
            let mut fields: Vec<(String, String)> = fields.into_iter().flatten().collect();
            match twist {
                0 => fields.push((r#""extra""#.to_string(), extra)),
                1 if !fields.is_empty() => {
                    let again = (fields[0].0.clone(), extra);
                    fields.push(again);
                }
                2 if !fields.is_empty() => {
                    // `"\u0063oin"` is `"coin"`, escaped.
                    let key = &fields[0].0;
                    fields[0].0 = format!("\"\\u{:04x}{}", key.as_bytes()[1], &key[2..]);
                }
                3 => fields.push((r#""_id""#.to_string(), extra)),
                4 => fields.push((r#""time_ns""#.to_string(), extra)),
                _ => {}
            }
            let fields = if shuffle {
                Just(fields).prop_shuffle().boxed()
            } else {
                Just(fields).boxed()
            };
            fields.prop_map(|fields| {
                let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", body.join(","))
            })
        },
    )
}

fn side() -> impl Strategy<Value = String> {
    object(vec![
        field("user", json_string()).boxed(),
        field("start_pos", quoted(decimal_text())).boxed(),
        field("oid", integer()).boxed(),
        field("twap_id", prop_oneof![Just("null".to_string()), integer()]).boxed(),
        field(
            "cloid",
            prop_oneof![Just("null".to_string()), json_string()],
        )
        .boxed(),
    ])
}

fn trade_line() -> impl Strategy<Value = String> {
    let sides = prop_oneof![
        10 => prop::collection::vec(side(), 2..=2),
        1 => prop::collection::vec(side(), 0..=4),
    ]
    .prop_map(|sides| format!("[{}]", sides.join(",")));
    (
        object(vec![
            field("coin", json_string()).boxed(),
            field("side", quoted("[AB]")).boxed(),
            field("time", quoted(time_text())).boxed(),
            field("px", quoted(decimal_text())).boxed(),
            field("sz", quoted(decimal_text())).boxed(),
            field("hash", json_string()).boxed(),
            field("trade_dir_override", json_string()).boxed(),
            field("side_info", sides).boxed(),
        ]),
        0u8..40,
    )
        .prop_map(|(line, damage)| match damage {
            // Whitespace around and inside, as JSON allows.
            0 => format!(" {}\t", line.replace(',', " , ")),
            1 => {
                let mut cut = line.len() / 2;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line[..cut].to_string()
            }
            2 => format!("{line}x"),
            3 => format!("[{line}]"),
            _ => line,
        })
}

/// A trade line in the node's exact shape: the fast path must take it.
fn node_trade_line() -> impl Strategy<Value = String> {
    let side = (
        "0x[0-9a-f]{40}",
        "-?[0-9]{1,6}\\.[0-9]{1,9}",
        0u64..1 << 40,
        prop::option::of(0u64..1 << 20),
        prop::option::of("0x[0-9a-f]{32}"),
    )
        .prop_map(|(user, start_pos, oid, twap, cloid)| {
            let twap = twap.map_or("null".to_string(), |n| n.to_string());
            let cloid = cloid.map_or("null".to_string(), |c| format!("{c:?}"));
            format!(
                r#"{{"user":"{user}","start_pos":"{start_pos}","oid":{oid},"twap_id":{twap},"cloid":{cloid}}}"#
            )
        });
    (
        "@?[A-Z]{2,8}|@[0-9]{1,3}",
        "[AB]",
        node_time(),
        "[0-9]{1,6}\\.[0-9]{1,5}",
        "[0-9]{1,4}\\.[0-9]{1,5}",
        "0x[0-9a-f]{64}",
        side.clone(),
        side,
    )
        .prop_map(|(coin, side, time, px, sz, hash, a, b)| {
            format!(
                r#"{{"coin":"{coin}","side":"{side}","time":"{time}","px":"{px}","sz":"{sz}","hash":"{hash}","trade_dir_override":"Na","side_info":[{a},{b}]}}"#
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn trade_fast_path_equals_generic_path_on_any_line(line in trade_line()) {
        let (fast, generic) = both(&Format::HlTrades, line.as_bytes());
        prop_assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(generic).unwrap());
    }

    #[test]
    fn trade_fast_path_takes_the_nodes_lines(line in node_trade_line()) {
        let fast = trades::transform(line.as_bytes());
        prop_assert!(fast.is_some(), "declined {}", line);
        let generic = outcome(Format::HlTrades.transform_generic(line.as_bytes(), AT));
        prop_assert_eq!(Ok(vec![fast.unwrap().into_bytes()]), generic);
    }
}
