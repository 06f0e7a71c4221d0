//! The typed fast path for `hyperliquid/node_trades` lines.
//!
//! The generic path parses a line into a `Bson` tree (a map and a `String` per key and value),
//! transforms the tree and encodes it: about 5 µs a trade line, against 1.4 µs here (see
//! docs/benchmarks.md, section "mongo"). Here one serde visitor reads the
//! line's fields in the order they come, as strings borrowed from the line and as integers, and
//! writes each field's BSON straight into one buffer ([`RawWriter`]): `time` as a date, `px`,
//! `sz` and every `start_pos` as Decimal128, the rest as they are. Then it appends `time_ns`
//! and the natural `_id`, as the generic path does. The document is byte for byte the generic
//! path's (format/tests.rs checks that over the samples and over generated lines).
//!
//! It takes only the node's shape: the node's keys, each at most once, in any order, with the
//! node's value types (strings; integers for `oid`; integers or null for `twap_id`; strings or
//! null for `cloid`), at least two sides with their `oid` and `start_pos`, a valid time and decimals.
//! Anything else (another key, a number where a string belongs, a missing key field, a bad
//! decimal, malformed JSON, a document over 16 MiB) makes [`transform`] return `None`, and the
//! caller runs the generic path on the line, which stores it or rejects it, with its reason,
//! exactly as before.

use super::NaturalKey;
use super::decimal::parse_decimal;
use super::parse_datetime;
use super::raw::{
    ARRAY, DOCUMENT, Fields, Int, Known, RawWriter, Seen, Str, fields, not_the_shape,
};
use mongodb::bson::RawDocumentBuf;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A trade line as one document, or `None` when the line is not in the node's shape.
pub(super) fn transform(line: &[u8]) -> Option<RawDocumentBuf> {
    // A trade's BSON is about 50 bytes longer than its JSON.
    let mut out = RawWriter::with_capacity(line.len() + 128);
    let doc = out.open();
    let mut json = serde_json::Deserializer::from_slice(line);
    let trade = TradeSeed { out: &mut out }.deserialize(&mut json).ok()?;
    json.end().ok()?;
    let (time, ns) = trade.time?;
    let [first, second] = trade.sides?;
    let mut key = NaturalKey::new();
    key.string(&time.0);
    key.string(&trade.coin?.0);
    key.string(&trade.px?.0);
    key.string(&trade.sz?.0);
    for side in [first, second] {
        key.int(side.oid?.value());
        key.string(&side.start_pos?.0);
    }
    // As the generic path: `time_ns` after the line's fields, then `_id`.
    out.i64("time_ns", ns as i64);
    key.with_id(|id| out.string("_id", id));
    out.close(doc);
    out.finish()
}

/// What the natural key needs from a line; the rest is written as it is read.
struct Trade<'de> {
    time: Option<(Str<'de>, i128)>,
    coin: Option<Str<'de>>,
    px: Option<Str<'de>>,
    sz: Option<Str<'de>>,
    /// The first two sides' key fields (`None` without `side_info` or with fewer sides).
    sides: Option<[SideKey<'de>; 2]>,
}

#[derive(Default)]
struct SideKey<'de> {
    oid: Option<Int>,
    start_pos: Option<Str<'de>>,
}

fields! {
    /// The keys of a trade.
    TradeField {
        Coin = "coin",
        Side = "side",
        Time = "time",
        Px = "px",
        Sz = "sz",
        Hash = "hash",
        TradeDirOverride = "trade_dir_override",
        SideInfo = "side_info",
    }
}

fields! {
    /// The keys of a side, in `side_info`.
    SideField {
        User = "user",
        StartPos = "start_pos",
        Oid = "oid",
        TwapId = "twap_id",
        Cloid = "cloid",
    }
}

/// A decimal string, written as Decimal128; the text is kept for the key.
fn decimal<'de, A: MapAccess<'de>>(
    map: &mut A,
    out: &mut RawWriter,
    key: &str,
) -> Result<Str<'de>, A::Error> {
    let text: Str = map.next_value()?;
    out.decimal(key, parse_decimal(&text.0).ok_or_else(not_the_shape)?);
    Ok(text)
}

/// The trade object: the whole line.
struct TradeSeed<'w> {
    out: &'w mut RawWriter,
}

impl<'de> DeserializeSeed<'de> for TradeSeed<'_> {
    type Value = Trade<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Trade<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TradeSeed<'_> {
    type Value = Trade<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a node_trades object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Trade<'de>, A::Error> {
        let out = self.out;
        let mut trade = Trade {
            time: None,
            coin: None,
            px: None,
            sz: None,
            sides: None,
        };
        let mut seen = Seen::default();
        while let Some(Known(field)) = map.next_key::<Known<TradeField>>()? {
            seen.first(field)?;
            let name = field.name();
            match field {
                TradeField::Time => {
                    let text: Str = map.next_value()?;
                    let ns = parse_datetime(&text.0, true).ok_or_else(not_the_shape)?;
                    out.date_time(name, ns.div_euclid(1_000_000) as i64);
                    trade.time = Some((text, ns));
                }
                TradeField::Px => trade.px = Some(decimal(&mut map, out, name)?),
                TradeField::Sz => trade.sz = Some(decimal(&mut map, out, name)?),
                TradeField::Coin => {
                    let text: Str = map.next_value()?;
                    out.string(name, &text.0);
                    trade.coin = Some(text);
                }
                TradeField::Side | TradeField::Hash | TradeField::TradeDirOverride => {
                    out.string(name, &map.next_value::<Str>()?.0);
                }
                TradeField::SideInfo => {
                    out.key(ARRAY, name);
                    trade.sides = map.next_value_seed(SidesSeed { out: &mut *out })?;
                }
            }
        }
        Ok(trade)
    }
}

/// `side_info`: an array of sides.
struct SidesSeed<'w> {
    out: &'w mut RawWriter,
}

impl<'de> DeserializeSeed<'de> for SidesSeed<'_> {
    type Value = Option<[SideKey<'de>; 2]>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SidesSeed<'_> {
    type Value = Option<[SideKey<'de>; 2]>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of sides")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let out = self.out;
        let array = out.open();
        let mut keys: [SideKey; 2] = Default::default();
        let mut index = 0;
        while let Some(side) = seq.next_element_seed(SideSeed {
            out: &mut *out,
            index,
        })? {
            if let Some(slot) = keys.get_mut(index) {
                *slot = side;
            }
            index += 1;
        }
        out.close(array);
        Ok((index >= 2).then_some(keys))
    }
}

/// One side: a document in `side_info`, at `index`.
struct SideSeed<'w> {
    out: &'w mut RawWriter,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for SideSeed<'_> {
    type Value = SideKey<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SideSeed<'_> {
    type Value = SideKey<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a side object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SideKey<'de>, A::Error> {
        let out = self.out;
        out.index(DOCUMENT, self.index);
        let doc = out.open();
        let mut side = SideKey::default();
        let mut seen = Seen::default();
        while let Some(Known(field)) = map.next_key::<Known<SideField>>()? {
            seen.first(field)?;
            let name = field.name();
            match field {
                SideField::StartPos => side.start_pos = Some(decimal(&mut map, out, name)?),
                SideField::Oid => {
                    let oid: Int = map.next_value()?;
                    out.int(name, oid);
                    side.oid = Some(oid);
                }
                SideField::TwapId => match map.next_value::<Option<Int>>()? {
                    Some(n) => out.int(name, n),
                    None => out.null(name),
                },
                SideField::User => out.string(name, &map.next_value::<Str>()?.0),
                SideField::Cloid => match map.next_value::<Option<Str>>()? {
                    Some(text) => out.string(name, &text.0),
                    None => out.null(name),
                },
            }
        }
        out.close(doc);
        Ok(side)
    }
}
