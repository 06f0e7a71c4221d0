//! The `mongo` factory end to end: host files through `logfile` into a local MongoDB-protocol
//! server, checked through the driver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::TestPond;
use support::mongo;

/// Installs a logfile node over `host/hourly/*/*` chained to a mongo node with `format`.
fn pipeline(pond: &TestPond, db: &str, format: &str, extra: &str) {
    let logfile = pond.host_file(
        "cfg/logfile.yaml",
        format!(
            "name: hl\nactive_pattern: \"{}/hourly/*/*\"\npond_path: logs/hl\ndownstream: [/etc/to-mongo]\n",
            pond.host.display()
        )
        .as_bytes(),
    );
    let mongo_cfg = pond.host_file(
        "cfg/mongo.yaml",
        format!(
            "source: \"logs/hl/**\"\nmongodb:\n  uri: \"{}\"\n  database: {db}\n  collection: docs\nformat: {format}\nbatch_size: 50\n{extra}",
            mongo::shared().uri
        )
        .as_bytes(),
    );
    pond.ok(&[
        "mknod",
        "mongo",
        "/etc/to-mongo",
        "--config-path",
        mongo_cfg.to_str().unwrap(),
    ]);
    pond.ok(&[
        "mknod",
        "logfile",
        "/etc/hl",
        "--config-path",
        logfile.to_str().unwrap(),
    ]);
}

fn trade_lines() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/hl/node_trades/hourly/20250624/2"
    ))
    .unwrap()
}

/// Trades preset: every line stored once, decimals exact, dates from the entries, and a rerun
/// stores nothing more.
#[test]
fn trades_flow_from_host_through_logfile_into_mongodb_exactly_once() {
    let server = mongo::shared();
    let db = mongo::database("trades_e2e");
    let pond = TestPond::new();
    pipeline(&pond, &db, "hyperliquid/node_trades", "");
    let lines = trade_lines();
    let line_count = lines.iter().filter(|&&b| b == b'\n').count() as u64;
    pond.host_file("hourly/20250624/2", &lines);
    let report = pond.json(&["run", "/etc/hl", "sync"]);
    let stage = &report["downstream"][0];
    assert_eq!(stage["ok"], true, "{report}");
    assert_eq!(stage["report"]["inserted"], line_count);
    assert_eq!(server.count(&db, "docs"), line_count);

    let first = server.docs(&db, "docs").into_iter().next().unwrap();
    assert!(first.get_decimal128("px").is_ok(), "{first}");
    assert!(first.get_datetime("time").is_ok(), "{first}");
    assert_eq!(first.get_str("_id").unwrap().len(), 32);

    // Rerun and a direct sync: nothing new, nothing duplicated.
    pond.ok(&["run", "/etc/hl", "sync"]);
    let again = pond.json(&["run", "/etc/to-mongo", "sync"]);
    assert_eq!(again["inserted"], 0);
    assert_eq!(server.count(&db, "docs"), line_count);
}
