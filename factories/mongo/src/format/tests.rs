#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const AT: LineAt = LineAt {
    node: 7,
    offset: 1234,
};

fn samples(name: &str) -> Vec<String> {
    let path = format!(
        "{}/../../../shared/samples/{name}",
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
        .transform(lines[0].as_bytes(), LineAt { node: 9, offset: 0 })
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
    });
    let doc = one(
        &format,
        r#"{"ts":"2025-10-20T08:18:50.905123Z","level":"812.40","site":"c"}"#,
    );
    assert_eq!(doc.get_str("_id").unwrap(), "7:1234");
    assert_eq!(doc.get_decimal128("level").unwrap().to_string(), "812.40");
    assert_eq!(doc.get_i64("ts_ns").unwrap() % 1_000_000, 123_000);
}

#[test]
fn bad_lines_are_rejected_with_a_reason() {
    let format = Format::Jsonl(Jsonl {
        id: IdSpec::Fields(vec![FieldPath::parse("k").unwrap()]),
        timestamp: Some((FieldPath::parse("t").unwrap(), TimeFormat::EpochMillis)),
        decimals: vec![FieldPath::parse("d").unwrap()],
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
    let format = Format::Jsonl(Jsonl {
        id: IdSpec::Position,
        timestamp: None,
        decimals: vec![],
    });
    let err = format.transform(big.as_bytes(), AT).unwrap_err();
    assert!(err.0.contains("16777216-byte limit"), "{}", err.0);
}
