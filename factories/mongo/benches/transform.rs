//! Parse + transform + BSON encode of Hyperliquid `node_trades` lines, writes disabled.
//!
//! `cargo bench -p pond-mongo --bench transform` (docs/benchmarks.md, section "mongo").
//!
//! Times `Format::HlTrades.transform` over LINES lines (default 200,000) for ROUNDS rounds
//! (default 5) on this one thread and prints lines/s and ns/line of the best round. Then it
//! times the generic path alone (`transform_generic`, what a line the typed fast path declines
//! costs) and pieces of the work alone, to show where the time goes:
//! - `serde_json -> IgnoredAny`: scanning the JSON and nothing else (a floor for any parse);
//! - `serde_json -> typed struct`: a derived, borrowing struct (see [`Trade`]), the kind of
//!   parse the fast path does, without writing anything;
//! - `serde_json -> Value`, `serde_json -> Bson`, `... + encode`: the generic path's parse into
//!   a tree, and its encoding without any transform;
//! - `parse_datetime`, `BLAKE3 natural key`: steps run alone on values extracted
//!   beforehand (from 1024 lines, so that they are in cache as they are inside `transform`);
//! - as context, `Format::HlFillsByBlock.transform` over the sample blocks, per fill (the fills
//!   presets have no fast path).
//!
//! Input: lines shaped like `testdata/samples/node_trades.jsonl` (key order, value shapes,
//! about 470 bytes), with values varied the way `benches/gen_trades.py` varies them, from a
//! fixed seed; the four sample lines are mixed in. `TRADES=FILE` uses the first LINES lines of
//! FILE instead (for example `python3 benches/gen_trades.py FILE 100`).
//!
//! `ONLY_TARGET=1` stops after the first row (for `perf record`).
//! Nothing is asserted; lines the transform rejects are counted and printed, and so are the
//! documents where `transform` and `transform_generic` differ (none should).
#![allow(clippy::print_stdout)]

use mongodb::bson::{Bson, RawDocumentBuf};
use pond_mongo::format::{Format, LineAt, parse_datetime};
use std::borrow::Cow;
use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn Error>>;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn hex(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(2 + 2 * bytes);
        s.push_str("0x");
        for _ in 0..bytes {
            s.push_str(&format!("{:02x}", self.below(256)));
        }
        s
    }
}

/// (coin, starting price, price decimals, size decimals), as in benches/gen_trades.py.
const COINS: &[(&str, f64, usize, usize)] = &[
    ("BTC", 104000.0, 0, 5),
    ("ETH", 2392.0, 1, 4),
    ("HYPE", 36.77, 3, 2),
    ("SOL", 145.2, 2, 2),
    ("@151", 2393.9, 1, 4),
    ("@107", 36.8, 3, 2),
    ("ZK", 0.12398, 5, 1),
    ("kPEPE", 0.01102, 6, 0),
    ("XRP", 2.184, 4, 0),
    ("DOGE", 0.1651, 5, 0),
    ("FARTCOIN", 1.0721, 4, 1),
    ("@142", 115865.0, 0, 4),
];

fn generate(n: usize, samples: &[String]) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let users: Vec<String> = (0..30_000).map(|_| rng.hex(20)).collect();
    let makers: Vec<String> = (0..40).map(|_| rng.hex(20)).collect();
    let mut price: Vec<f64> = COINS.iter().map(|c| c.1).collect();
    let mut ns: u64 = 1_750_733_796_172_847_427;
    let mut oid: u64 = 105_686_971_733;
    let mut lines = Vec::with_capacity(n);
    let (mut coin, mut taker, mut side, mut hash, mut twap) = (0, 0, 'B', rng.hex(32), None);
    for i in 0..n {
        if !samples.is_empty() && i % 1000 == 999 {
            lines.push(samples[i / 1000 % samples.len()].as_bytes().to_vec());
            continue;
        }
        let r = rng.unit();
        if !(0.08..0.45).contains(&r) {
            // A new taker order (else: the next fill of the same one).
            coin = rng.below(COINS.len() as u64) as usize;
            // Skewed: low indexes trade more.
            taker = (rng.unit().powi(3) * users.len() as f64) as usize;
            side = if rng.below(2) == 0 { 'A' } else { 'B' };
            oid += 1 + rng.below(900);
            if r < 0.08 {
                hash = format!("0x{}", "0".repeat(64));
                twap = Some(822_427 + rng.below(4000));
            } else {
                hash = rng.hex(32);
                twap = None;
            }
        }
        ns += 1 + rng.below(3_200_000);
        let (secs, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
        let day = secs % 86_400;
        let (name, _, px_dec, sz_dec) = COINS[coin];
        price[coin] *= 1.0 + (rng.unit() - 0.5) * 0.0014;
        let px = format!("{:.*}", px_dec, price[coin]);
        let size = (rng.unit().powi(4) * 1000.0 * 10f64.powi(-(sz_dec as i32) + 2))
            .max(10f64.powi(-(sz_dec as i32)));
        let sz = format!("{size:.sz_dec$}");
        let mut infos = Vec::with_capacity(2);
        for k in 0..2 {
            let is_taker = (k == 0) == (side == 'B');
            let user = if is_taker {
                &users[taker]
            } else {
                &makers[(rng.unit().powi(2) * makers.len() as f64) as usize]
            };
            let c = rng.unit();
            let cloid = if c < 0.75 {
                "null".to_string()
            } else {
                format!("\"{}\"", rng.hex(16))
            };
            let pos = (rng.unit() - 0.5) * 10f64.powi(1 + rng.below(6) as i32);
            let this_oid = if is_taker {
                oid
            } else {
                oid - rng.below(40_000)
            };
            let twap_id = match (is_taker, twap) {
                (true, Some(t)) => t.to_string(),
                _ => "null".to_string(),
            };
            infos.push(format!(
                "{{\"user\":\"{user}\",\"start_pos\":\"{pos:.prec$}\",\"oid\":{this_oid},\"twap_id\":{twap_id},\"cloid\":{cloid}}}",
                prec = sz_dec.max(1),
            ));
        }
        let line = format!(
            "{{\"coin\":\"{name}\",\"side\":\"{side}\",\"time\":\"2025-06-24T{:02}:{:02}:{:02}.{frac:09}\",\"px\":\"{px}\",\"sz\":\"{sz}\",\"hash\":\"{hash}\",\"trade_dir_override\":\"Na\",\"side_info\":[{},{}]}}",
            day / 3600,
            day / 60 % 60,
            day % 60,
            infos[0],
            infos[1],
        );
        lines.push(line.into_bytes());
    }
    lines
}

/// A trade line as a derived, borrowing struct: the typed parse alone, for the breakdown.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // Read by serde only: the row times the parse.
struct Trade<'a> {
    #[serde(borrow)]
    coin: Cow<'a, str>,
    #[serde(borrow)]
    side: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    px: Cow<'a, str>,
    #[serde(borrow)]
    sz: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
    #[serde(borrow)]
    trade_dir_override: Cow<'a, str>,
    #[serde(borrow)]
    side_info: Vec<Side<'a>>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Side<'a> {
    #[serde(borrow)]
    user: Cow<'a, str>,
    #[serde(borrow)]
    start_pos: Cow<'a, str>,
    oid: i64,
    twap_id: Option<i64>,
    #[serde(borrow)]
    cloid: Option<Cow<'a, str>>,
}

/// Runs `f` over every line, ROUNDS times; returns the best round's duration.
fn time(rounds: usize, lines: &[Vec<u8>], mut f: impl FnMut(&[u8]) -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let mut n = 0;
        for line in lines {
            n += f(black_box(line));
        }
        let took = start.elapsed();
        out = black_box(n);
        best = best.min(took);
    }
    (best, out)
}

fn report(label: &str, lines: usize, best: Duration) {
    let secs = best.as_secs_f64();
    println!(
        "| {label} | {:.0} | {:.0} |",
        lines as f64 / secs,
        secs * 1e9 / lines as f64
    );
}

fn env_usize(name: &str, default: usize) -> Res<usize> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse().map_err(|e| format!("{name}={v}: {e}"))?),
        Err(_) => Ok(default),
    }
}

fn main() -> Res<()> {
    // Arguments (`cargo bench` passes `--bench`) are ignored; settings come from the environment.
    let n = env_usize("LINES", 200_000)?;
    let rounds = env_usize("ROUNDS", 5)?.max(1);
    let sample_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/samples/node_trades.jsonl"
    );
    let samples: Vec<String> = std::fs::read_to_string(sample_path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let (lines, source) = match std::env::var("TRADES") {
        Ok(path) => {
            let text = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
            let lines: Vec<Vec<u8>> = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .take(n)
                .map(<[u8]>::to_vec)
                .collect();
            (lines, path)
        }
        Err(_) => (
            generate(n, &samples),
            format!(
                "generated ({} sample lines mixed in)",
                if samples.is_empty() { "no" } else { "the 4" }
            ),
        ),
    };
    let bytes: usize = lines.iter().map(Vec::len).sum();
    let format = Format::HlTrades;
    let at = LineAt {
        source: "1",
        offset: 0,
    };
    let rejected = lines
        .iter()
        .filter(|l| format.transform(l, at).is_err())
        .count();
    let encoded: usize = lines
        .iter()
        .filter_map(|l| format.transform(l, at).ok())
        .flatten()
        .map(|d| d.as_bytes().len())
        .sum();
    println!(
        "input: {} lines, {source}, {:.0} bytes/line, {:.0} BSON bytes/line; {rejected} rejected; best of {rounds} rounds, one thread",
        lines.len(),
        bytes as f64 / lines.len().max(1) as f64,
        encoded as f64 / (lines.len() - rejected).max(1) as f64,
    );
    println!();
    println!("| step | lines/s | ns/line |");
    println!("|---|---:|---:|");

    // The target: parse + transform + encode, as sync calls it.
    let (best, _) = time(rounds, &lines, |line| {
        format.transform(line, at).map(|d| d.len()).unwrap_or(0)
    });
    report(
        "`Format::HlTrades.transform` (the target)",
        lines.len(),
        best,
    );
    if std::env::var_os("ONLY_TARGET").is_some() {
        return Ok(());
    }

    let (best, _) = time(rounds, &lines, |line| {
        format
            .transform_generic(line, at)
            .map(|d| d.len())
            .unwrap_or(0)
    });
    report(
        "`Format::HlTrades.transform_generic` (the generic path alone)",
        lines.len(),
        best,
    );
    let differ = lines
        .iter()
        .filter(|l| {
            let fast = format.transform(l, at).map(|docs| {
                docs.into_iter()
                    .map(RawDocumentBuf::into_bytes)
                    .collect::<Vec<_>>()
            });
            let generic = format.transform_generic(l, at).map(|docs| {
                docs.into_iter()
                    .map(RawDocumentBuf::into_bytes)
                    .collect::<Vec<_>>()
            });
            fast != generic
        })
        .count();

    // Pieces, alone.
    let (best, _) = time(rounds, &lines, |line| {
        serde_json::from_slice::<serde::de::IgnoredAny>(line).map_or(0, |_| 1)
    });
    report(
        "serde_json -> `IgnoredAny` (scanning only)",
        lines.len(),
        best,
    );
    let (best, _) = time(rounds, &lines, |line| {
        serde_json::from_slice::<Trade>(line).map_or(0, |t| t.side_info.len())
    });
    report(
        "serde_json -> typed borrowing struct (no output)",
        lines.len(),
        best,
    );
    let (best, _) = time(rounds, &lines, |line| {
        serde_json::from_slice::<serde_json::Value>(line).map_or(0, |v| v.is_object() as usize)
    });
    report("serde_json -> `serde_json::Value`", lines.len(), best);
    let (best, _) = time(rounds, &lines, |line| {
        serde_json::from_slice::<Bson>(line).map_or(0, |v| v.as_document().map_or(0, |d| d.len()))
    });
    report(
        "serde_json -> `Bson` (as the generic path parses)",
        lines.len(),
        best,
    );
    let (best, _) = time(rounds, &lines, |line| {
        match serde_json::from_slice::<Bson>(line) {
            Ok(Bson::Document(doc)) => RawDocumentBuf::from_document(&doc)
                .map(|raw| raw.as_bytes().len())
                .unwrap_or(0),
            _ => 0,
        }
    });
    report(
        "serde_json -> `Bson` + `RawDocumentBuf::from_document` (no transform)",
        lines.len(),
        best,
    );

    // The transform's steps, on values extracted beforehand. They cycle over the values of the
    // first HOT lines: in `transform` a line's values are in cache (just parsed), and so they
    // are here.
    const HOT: usize = 1024;
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .take(HOT)
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("0").to_string();
    let times: Vec<String> = parsed.iter().map(|v| text(&v["time"])).collect();
    let mut i = 0;
    let (best, _) = time(rounds, &lines, |_| {
        let t = &times[i % times.len()];
        i += 1;
        parse_datetime(t, true).map_or(0, |ns| ns as usize & 1)
    });
    report("`parse_datetime`", lines.len(), best);
    // The key's input as the natural key gathers it: type-tagged, \x1f-separated values in one
    // buffer, then hashed once.
    let keys: Vec<Vec<u8>> = parsed
        .iter()
        .map(|v| {
            let mut key = Vec::new();
            for s in [&v["time"], &v["coin"], &v["px"], &v["sz"]] {
                key.extend_from_slice(b"s");
                key.extend_from_slice(s.as_str().unwrap_or("").as_bytes());
                key.extend_from_slice(b"\x1f");
            }
            for k in 0..2 {
                let side = &v["side_info"][k];
                key.extend_from_slice(format!("i{}\x1f", side["oid"]).as_bytes());
                key.extend_from_slice(b"s");
                key.extend_from_slice(side["start_pos"].as_str().unwrap_or("").as_bytes());
                key.extend_from_slice(b"\x1f");
            }
            key
        })
        .collect();
    let mut i = 0;
    let (best, _) = time(rounds, &lines, |_| {
        let key = &keys[i % keys.len()];
        i += 1;
        let mut h = blake3::Hasher::new();
        h.update(key);
        h.finalize().to_hex()[..32].len()
    });
    report(
        "BLAKE3 natural key (8 values gathered, hex)",
        lines.len(),
        best,
    );

    // Context: the fills presets have no fast path; the sample blocks, cycled, per fill.
    let blocks_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/samples/node_fills_by_block.jsonl"
    );
    let blocks: Vec<Vec<u8>> = std::fs::read_to_string(blocks_path)
        .map(|s| s.lines().map(|l| l.as_bytes().to_vec()).collect())
        .unwrap_or_default();
    if !blocks.is_empty() {
        let blocks: Vec<Vec<u8>> = blocks.iter().cycle().take(n).cloned().collect();
        let by_block = Format::HlFillsByBlock;
        let (best, fills) = time(rounds, &blocks, |line| {
            by_block.transform(line, at).map_or(0, |d| d.len())
        });
        report(
            "context: `Format::HlFillsByBlock.transform` (generic path), per fill",
            fills,
            best,
        );
    }
    println!();
    println!(
        "{differ} of {} lines differ between `transform` and `transform_generic`",
        lines.len()
    );
    Ok(())
}
