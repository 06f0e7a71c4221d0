//! Parse + transform + BSON encode of Hyperliquid `node_trades` lines, writes disabled.
//!
//! `cargo bench -p pond-mongo --bench transform` (docs/benchmarks.md, section "mongo").
//!
//! Times `Format::HlTrades.transform` over LINES lines (default 200,000) for ROUNDS rounds
//! (default 5) on this one thread and prints lines/s and ns/line of the best round. Then it
//! times pieces of the same work alone, to show where the time goes:
//! - `serde_json -> Value`: JSON parsing into serde_json's own tree (a floor for parsing);
//! - `serde_json -> Bson`: parsing straight into BSON, as `transform` does;
//! - `... + encode`: the same plus `RawDocumentBuf::from_document`, no transform;
//! - `FieldPath::parse x12`, `Decimal128 parse x4`, `parse_datetime`, `blake3 key`: the
//!   transform's steps run alone on values extracted beforehand (from 1024 lines, so that they
//!   are in cache as they are inside `transform`);
//! - `sketch: ...`: the same transform done another way (see [`sketch`]), checked to give
//!   byte-identical documents, to show what the current design costs.
//!
//! Input: lines shaped like `../shared/samples/node_trades.jsonl` (key order, value shapes,
//! about 470 bytes), with values varied the way `benches/gen_trades.py` varies them, from a
//! fixed seed; the four sample lines are mixed in. `TRADES=FILE` uses the first LINES lines of
//! FILE instead (for example `python3 benches/gen_trades.py FILE 100`).
//!
//! `ONLY_TARGET=1` stops after the first row (for `perf record`).
//! Nothing is asserted; lines the transform rejects are counted and printed.
#![allow(clippy::print_stdout)]

use mongodb::bson::{Bson, Decimal128, RawDocumentBuf};
use pond_mongo::format::{FieldPath, Format, LineAt, parse_datetime};
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

/// A sketch, not the product: the `node_trades` transform written the other way round, to show
/// what the design costs. A typed, borrowing parse (no tree, no per-key `String`s, no hashing of
/// keys); the key hashed as `natural_key` hashes it; decimals packed by hand; the document
/// written in the order `transform` writes it, either with `RawDocumentBuf::append` or by hand
/// into one buffer. It covers the shapes the generator writes only: a real version would fall
/// back to the generic path for anything else (unknown fields, a missing `start_pos`, numbers
/// where strings are expected, decimals over 34 digits). `main` checks that it gives
/// byte-identical documents.
mod sketch {
    use mongodb::bson::{DateTime, Decimal128, RawArrayBuf, RawBson, RawBsonRef, RawDocumentBuf};
    use pond_mongo::format::parse_datetime;
    use serde::Deserialize;
    use std::borrow::Cow;
    use std::io::Write;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Side<'a> {
        #[serde(borrow)]
        user: Cow<'a, str>,
        #[serde(borrow)]
        start_pos: Cow<'a, str>,
        oid: u64,
        twap_id: Option<u64>,
        #[serde(borrow)]
        cloid: Option<Cow<'a, str>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Trade<'a> {
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
        pub side_info: Vec<Side<'a>>,
    }

    /// As bson's visitor stores a JSON integer: Int32 when it fits.
    fn int(n: u64) -> RawBson {
        match i32::try_from(n) {
            Ok(n) => RawBson::Int32(n),
            Err(_) => RawBson::Int64(n as i64),
        }
    }

    /// `[-]digits[.digits]`, at most 34 digits, into BID Decimal128 (exponent = -fraction
    /// digits, coefficient as written, like `str::parse`).
    pub fn decimal(text: &str) -> Option<Decimal128> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() || int.len() + frac.len() > 34 || (body.contains('.') && frac.is_empty())
        {
            return None;
        }
        let mut coefficient: u128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            if !b.is_ascii_digit() {
                return None;
            }
            coefficient = coefficient * 10 + u128::from(b - b'0');
        }
        let exponent = 6176u128 - frac.len() as u128;
        let bits = (u128::from(negative) << 127) | (exponent << 113) | coefficient;
        Some(Decimal128::from_bytes(bits.to_le_bytes()))
    }

    /// The parsed line, its `_id` (as `natural_key` computes it) and its time in nanoseconds.
    fn prepare<'a>(line: &'a [u8], scratch: &mut Vec<u8>) -> Option<(Trade<'a>, String, i128)> {
        let t: Trade = serde_json::from_slice(line).ok()?;
        if t.side_info.len() != 2 {
            return None;
        }
        let mut key = blake3::Hasher::new();
        for s in [&t.time, &t.coin, &t.px, &t.sz] {
            key.update(b"s").update(s.as_bytes()).update(b"\x1f");
        }
        for side in &t.side_info {
            scratch.clear();
            write!(scratch, "i{}", side.oid).ok()?;
            key.update(scratch).update(b"\x1f");
            key.update(b"s")
                .update(side.start_pos.as_bytes())
                .update(b"\x1f");
        }
        let id = key.finalize().to_hex()[..32].to_string();
        let ns = parse_datetime(&t.time, true)?;
        Some((t, id, ns))
    }

    /// Writes with bson's `RawDocumentBuf::append`.
    pub fn transform(line: &[u8], scratch: &mut Vec<u8>) -> Option<RawDocumentBuf> {
        let (t, id, ns) = prepare(line, scratch)?;
        let mut doc = RawDocumentBuf::new();
        doc.append_ref("coin", RawBsonRef::String(&t.coin));
        doc.append_ref("side", RawBsonRef::String(&t.side));
        doc.append(
            "time",
            DateTime::from_millis(ns.div_euclid(1_000_000) as i64),
        );
        doc.append("px", decimal(&t.px)?);
        doc.append("sz", decimal(&t.sz)?);
        doc.append_ref("hash", RawBsonRef::String(&t.hash));
        doc.append_ref(
            "trade_dir_override",
            RawBsonRef::String(&t.trade_dir_override),
        );
        let mut sides = RawArrayBuf::new();
        for side in &t.side_info {
            let mut d = RawDocumentBuf::new();
            d.append_ref("user", RawBsonRef::String(&side.user));
            d.append("start_pos", decimal(&side.start_pos)?);
            d.append("oid", int(side.oid));
            d.append("twap_id", side.twap_id.map_or(RawBson::Null, int));
            match &side.cloid {
                Some(c) => d.append_ref("cloid", RawBsonRef::String(c)),
                None => d.append("cloid", RawBson::Null),
            }
            sides.push(d);
        }
        doc.append("side_info", sides);
        doc.append("time_ns", RawBson::Int64(ns as i64));
        doc.append_ref("_id", RawBsonRef::String(&id));
        Some(doc)
    }

    /// Writes the BSON by hand into one buffer of the right capacity.
    pub fn transform_by_hand(line: &[u8], scratch: &mut Vec<u8>) -> Option<RawDocumentBuf> {
        let (t, id, ns) = prepare(line, scratch)?;
        let mut w = Writer(Vec::with_capacity(line.len() + 128));
        let doc = w.open();
        w.string("coin", &t.coin);
        w.string("side", &t.side);
        w.element(0x09, "time");
        w.0.extend_from_slice(&(ns.div_euclid(1_000_000) as i64).to_le_bytes());
        w.decimal("px", &t.px)?;
        w.decimal("sz", &t.sz)?;
        w.string("hash", &t.hash);
        w.string("trade_dir_override", &t.trade_dir_override);
        w.element(0x04, "side_info");
        let array = w.open();
        for (i, side) in t.side_info.iter().enumerate() {
            w.element(0x03, if i == 0 { "0" } else { "1" });
            let d = w.open();
            w.string("user", &side.user);
            w.decimal("start_pos", &side.start_pos)?;
            w.int("oid", side.oid);
            match side.twap_id {
                Some(n) => w.int("twap_id", n),
                None => w.element(0x0A, "twap_id"),
            }
            match &side.cloid {
                Some(c) => w.string("cloid", c),
                None => w.element(0x0A, "cloid"),
            }
            w.close(d);
        }
        w.close(array);
        w.element(0x12, "time_ns");
        w.0.extend_from_slice(&(ns as i64).to_le_bytes());
        w.string("_id", &id);
        w.close(doc);
        RawDocumentBuf::from_bytes(w.0).ok()
    }

    struct Writer(Vec<u8>);

    impl Writer {
        fn open(&mut self) -> usize {
            self.0.extend_from_slice(&[0; 4]);
            self.0.len() - 4
        }
        fn close(&mut self, start: usize) {
            self.0.push(0);
            let len = (self.0.len() - start) as i32;
            self.0[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
        fn element(&mut self, kind: u8, key: &str) {
            self.0.push(kind);
            self.0.extend_from_slice(key.as_bytes());
            self.0.push(0);
        }
        fn string(&mut self, key: &str, value: &str) {
            self.element(0x02, key);
            self.0
                .extend_from_slice(&(value.len() as i32 + 1).to_le_bytes());
            self.0.extend_from_slice(value.as_bytes());
            self.0.push(0);
        }
        fn decimal(&mut self, key: &str, value: &str) -> Option<()> {
            let d = decimal(value)?;
            self.element(0x13, key);
            self.0.extend_from_slice(&d.bytes());
            Some(())
        }
        fn int(&mut self, key: &str, n: u64) {
            match i32::try_from(n) {
                Ok(n) => {
                    self.element(0x10, key);
                    self.0.extend_from_slice(&n.to_le_bytes());
                }
                Err(_) => {
                    self.element(0x12, key);
                    self.0.extend_from_slice(&(n as i64).to_le_bytes());
                }
            }
        }
    }
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
        "/../../../shared/samples/node_trades.jsonl"
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
    let at = LineAt { node: 1, offset: 0 };
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

    // Pieces, alone.
    let (best, _) = time(rounds, &lines, |line| {
        serde_json::from_slice::<serde_json::Value>(line).map_or(0, |v| v.is_object() as usize)
    });
    report("serde_json -> `serde_json::Value`", lines.len(), best);
    let (best, _) = time(rounds, &lines, |line| {
        serde_json::from_slice::<Bson>(line).map_or(0, |v| v.as_document().map_or(0, |d| d.len()))
    });
    report(
        "serde_json -> `Bson` (as transform parses)",
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

    // The transform's steps, on values extracted beforehand.
    const PATHS: &[&str] = &[
        "time",
        "coin",
        "px",
        "sz",
        "side_info.0.oid",
        "side_info.0.start_pos",
        "side_info.1.oid",
        "side_info.1.start_pos",
        "px",
        "sz",
        "side_info.*.start_pos",
        "time",
    ];
    let (best, _) = time(rounds, &lines, |_| {
        PATHS
            .iter()
            .filter_map(|p| FieldPath::parse(p).ok())
            .map(|p| p.text.len())
            .sum()
    });
    report(
        "`FieldPath::parse` x12 (`paths(...)` in `hl_trade`, per line)",
        lines.len(),
        best,
    );
    // The steps below cycle over the values of the first HOT lines: in `transform` a line's values
    // are in cache (just parsed), and so they are here.
    const HOT: usize = 1024;
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .take(HOT)
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("0").to_string();
    let decimals: Vec<[String; 4]> = parsed
        .iter()
        .map(|v| {
            [
                text(&v["px"]),
                text(&v["sz"]),
                text(&v["side_info"][0]["start_pos"]),
                text(&v["side_info"][1]["start_pos"]),
            ]
        })
        .collect();
    let times: Vec<String> = parsed.iter().map(|v| text(&v["time"])).collect();
    let mut i = 0;
    let (best, _) = time(rounds, &lines, |_| {
        let d = &decimals[i % decimals.len()];
        i += 1;
        d.iter()
            .filter_map(|s| s.parse::<Decimal128>().ok())
            .map(|x| x.bytes()[0] as usize)
            .sum()
    });
    report("`Decimal128` from string x4", lines.len(), best);
    let mut i = 0;
    let (best, _) = time(rounds, &lines, |_| {
        let t = &times[i % times.len()];
        i += 1;
        parse_datetime(t, true).map_or(0, |ns| ns as usize & 1)
    });
    report("`parse_datetime`", lines.len(), best);
    let mut i = 0;
    let (best, _) = time(rounds, &lines, |_| {
        // The key's inputs as natural_key feeds them: type-tagged, \x1f-separated, the two
        // integers through format!.
        let v = &parsed[i % parsed.len()];
        i += 1;
        let mut h = blake3::Hasher::new();
        for s in [&v["time"], &v["coin"], &v["px"], &v["sz"]] {
            h.update(b"s");
            h.update(s.as_str().unwrap_or("").as_bytes());
            h.update(b"\x1f");
        }
        for k in 0..2 {
            let side = &v["side_info"][k];
            h.update(format!("i{}", side["oid"].as_i64().unwrap_or(0)).as_bytes());
            h.update(b"\x1f");
            h.update(b"s");
            h.update(side["start_pos"].as_str().unwrap_or("").as_bytes());
            h.update(b"\x1f");
        }
        h.finalize().to_hex()[..32].len()
    });
    report("blake3 natural key (8 values, hex)", lines.len(), best);

    // The sketch: same output, other design.
    let mut scratch = Vec::new();
    let differ = lines
        .iter()
        .filter(|l| {
            let ours = format.transform(l, at).ok().and_then(|mut d| d.pop());
            let theirs = sketch::transform(l, &mut scratch);
            ours.map(|d| d.into_bytes()) != theirs.map(|d| d.into_bytes())
        })
        .count();
    let (best, _) = time(rounds, &lines, |line| {
        sketch::transform(line, &mut scratch).map_or(0, |d| d.as_bytes().len())
    });
    report(
        &format!(
            "sketch: typed borrowed parse + direct `RawDocumentBuf` ({differ} of {} documents differ from `transform`'s bytes)",
            lines.len()
        ),
        lines.len(),
        best,
    );
    let differ = lines
        .iter()
        .filter(|l| {
            let ours = format.transform(l, at).ok().and_then(|mut d| d.pop());
            let theirs = sketch::transform_by_hand(l, &mut scratch);
            ours.map(|d| d.into_bytes()) != theirs.map(|d| d.into_bytes())
        })
        .count();
    let (best, _) = time(rounds, &lines, |line| {
        sketch::transform_by_hand(line, &mut scratch).map_or(0, |d| d.as_bytes().len())
    });
    report(
        &format!("sketch, BSON written by hand into one buffer ({differ} differ)"),
        lines.len(),
        best,
    );
    let (best, _) = time(rounds, &lines, |line| {
        serde_json::from_slice::<sketch::Trade>(line).map_or(0, |t| t.side_info.len())
    });
    report("sketch: typed borrowed parse alone", lines.len(), best);
    let mut i = 0;
    let (best, _) = time(rounds, &lines, |_| {
        let d = &decimals[i % decimals.len()];
        i += 1;
        d.iter()
            .filter_map(|s| sketch::decimal(s))
            .map(|x| x.bytes()[0] as usize)
            .sum()
    });
    report("sketch: `Decimal128` packed by hand x4", lines.len(), best);
    Ok(())
}
