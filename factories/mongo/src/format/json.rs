//! One JSON line into BSON, changing nothing the line says.
//!
//! - **Plain JSON by default.** Keys are keys: `{"x": {"$oid": "..."}}` is stored as an object
//!   with a `$oid` key, not as an ObjectId. MongoDB extended JSON (`$oid`, `$date`,
//!   `$numberDecimal`, ...) is read only when the config sets `extended_json: true`.
//! - **Numbers exactly.** Integers are Int32 or Int64 (as the `bson` crate reads JSON); past the
//!   64-bit range is stored as an exact Decimal128 (up to 34 digits) or refused with the reason,
//!   never rounded into a double. Numbers with a fraction or an exponent are doubles, as JSON
//!   readers take them.
//!
//! serde_json reads integers past `u64` as rounded `f64`s, so before it parses a line whose
//! text holds a long run of digits, [`parse`] finds the integer literals past `i64` outside
//! strings, and hands serde_json the line with each one replaced by a placeholder string; the
//! placeholders become Decimal128s in the tree.

use super::decimal::parse_decimal;
use super::{Reject, Result, reject};
use mongodb::bson::{Bson, Document};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Integer digits that the literals past `i64` have at least (`i64::MAX` has 19).
const LONG_RUN: usize = 19;
/// Digits a Decimal128 holds exactly.
const DECIMAL_DIGITS: usize = 34;

/// Parses `line` into BSON by the rules above.
pub(super) fn parse(line: &[u8], extended: bool) -> Result<Bson> {
    let big = if has_long_digit_run(line) {
        big_integers(line)
    } else {
        Vec::new()
    };
    if big.is_empty() {
        return parse_text(line, extended);
    }
    // A placeholder no string of this line can hold: it names the line's own hash.
    let tag = format!("\u{1}pond-integer-{}:", &blake3::hash(line).to_hex()[..16]);
    let mut text = Vec::with_capacity(line.len() + big.len() * 40);
    let mut at = 0;
    for (k, range) in big.iter().enumerate() {
        text.extend_from_slice(&line[at..range.start]);
        text.extend_from_slice(format!("\"\\u0001{}{k}\"", &tag[1..]).as_bytes());
        at = range.end;
    }
    text.extend_from_slice(&line[at..]);
    let mut value = parse_text(&text, extended)?;
    let literals: Vec<&str> = big
        .iter()
        .map(|r| std::str::from_utf8(&line[r.clone()]).unwrap_or_default())
        .collect();
    replace_placeholders(&mut value, &tag, &literals)?;
    Ok(value)
}

fn parse_text(line: &[u8], extended: bool) -> Result<Bson> {
    let parsed = if extended {
        serde_json::from_slice::<Bson>(line)
    } else {
        let mut json = serde_json::Deserializer::from_slice(line);
        json.deserialize_any(PlainVisitor)
            .and_then(|value| json.end().map(|()| value))
    };
    parsed.or_else(|e| {
        if std::str::from_utf8(line).is_err() {
            reject("line is not valid UTF-8")
        } else {
            reject(format!("malformed JSON: {e}"))
        }
    })
}

/// Whether `line` has `LONG_RUN` digits in a row somewhere (cheap: most lines do not).
fn has_long_digit_run(line: &[u8]) -> bool {
    let mut run = 0;
    for &b in line {
        if b.is_ascii_digit() {
            run += 1;
            if run >= LONG_RUN {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// The byte ranges of the integer literals outside strings whose value is past `i64`.
fn big_integers(line: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < line.len() && line[i] != b'"' {
                    i += if line[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < line.len()
                    && matches!(line[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                let token = &line[start..i];
                let integer = !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
                if integer
                    && let Ok(text) = std::str::from_utf8(token)
                    && text.parse::<i64>().is_err()
                    && text
                        .trim_start_matches('-')
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                    && !text.trim_start_matches('-').is_empty()
                {
                    out.push(start..i);
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Turns each placeholder string `TAG<k>` into the Decimal128 of `literals[k]`.
fn replace_placeholders(value: &mut Bson, tag: &str, literals: &[&str]) -> Result<()> {
    match value {
        Bson::String(text) if text.starts_with(tag) => {
            let literal = text[tag.len()..]
                .parse::<usize>()
                .ok()
                .and_then(|k| literals.get(k))
                .copied()
                .unwrap_or_default();
            *value = Bson::Decimal128(big_integer(literal)?);
        }
        Bson::Array(items) => {
            for item in items {
                replace_placeholders(item, tag, literals)?;
            }
        }
        Bson::Document(doc) => {
            for (_, item) in doc.iter_mut() {
                replace_placeholders(item, tag, literals)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// An integer past `i64` as an exact Decimal128, or why it cannot be one.
fn big_integer(literal: &str) -> Result<mongodb::bson::Decimal128> {
    let digits = literal.trim_start_matches('-').trim_start_matches('0');
    if digits.len() > DECIMAL_DIGITS {
        return reject(format!(
            "integer {literal} has {} digits: more than the {DECIMAL_DIGITS} a Decimal128 holds \
             exactly, and a double would round it",
            digits.len()
        ));
    }
    parse_decimal(literal)
        .ok_or_else(|| Reject(format!("integer {literal} cannot be stored exactly")))
}

/// Builds plain BSON from serde_json: no extended JSON, integers exact.
struct PlainVisitor;

impl<'de> Visitor<'de> for PlainVisitor {
    type Value = Bson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Bson, E> {
        Ok(Bson::Boolean(v))
    }

    // As the `bson` crate reads JSON (so documents stay what they were): serde_json gives a
    // negative integer as i64 (stored as Int64), a non-negative one as u64 (Int32 when it
    // fits, else Int64).
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Bson, E> {
        Ok(Bson::Int64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Bson, E> {
        if let Ok(v) = i32::try_from(v) {
            return Ok(Bson::Int32(v));
        }
        match i64::try_from(v) {
            Ok(v) => Ok(Bson::Int64(v)),
            // Found by `big_integers` first; kept exact here all the same.
            Err(_) => parse_decimal(&v.to_string())
                .map(Bson::Decimal128)
                .ok_or_else(|| E::custom(format!("integer {v} cannot be stored exactly"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Bson, E> {
        Ok(Bson::Double(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Bson, E> {
        Ok(Bson::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Bson, E> {
        Ok(Bson::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Bson, E> {
        Ok(Bson::Null)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Bson, E> {
        Ok(Bson::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Bson, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(PlainSeed)? {
            items.push(item);
        }
        Ok(Bson::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Bson, A::Error> {
        let mut doc = Document::new();
        while let Some(key) = map.next_key::<String>()? {
            // A repeated key keeps its first place and takes its last value, as MongoDB's
            // own JSON reader does.
            let value = map.next_value_seed(PlainSeed)?;
            doc.insert(key, value);
        }
        Ok(Bson::Document(doc))
    }
}

struct PlainSeed;

impl<'de> de::DeserializeSeed<'de> for PlainSeed {
    type Value = Bson;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Bson, D::Error> {
        d.deserialize_any(PlainVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mongodb::bson::doc;

    fn plain(line: &str) -> Bson {
        parse(line.as_bytes(), false).unwrap()
    }

    /// `$`-keys are plain keys unless extended JSON is asked for.
    #[test]
    fn dollar_keys_are_keys_unless_extended_json_is_on() {
        let line = r#"{"x":{"$oid":"zz"},"d":{"$numberDecimal":"1.5"}}"#;
        assert_eq!(
            plain(line),
            Bson::Document(doc! {"x": {"$oid": "zz"}, "d": {"$numberDecimal": "1.5"}})
        );
        assert!(
            parse(line.as_bytes(), true).is_err(),
            "zz is not an ObjectId"
        );
        let extended = parse(br#"{"d":{"$numberDecimal":"1.5"}}"#, true).unwrap();
        assert!(matches!(
            extended.as_document().unwrap().get("d"),
            Some(Bson::Decimal128(_))
        ));
    }

    /// Integers past 64 bits are exact Decimal128s, or refused past 34 digits; never doubles.
    #[test]
    fn big_integers_are_exact_or_refused() {
        let value = plain(
            r#"{"a":99999999999999999999999999,"b":18446744073709551615,"c":-9223372036854775809,"s":"99999999999999999999999","n":[12345678901234567890123]}"#,
        );
        let doc = value.as_document().unwrap();
        for (key, text) in [
            ("a", "99999999999999999999999999"),
            ("b", "18446744073709551615"),
            ("c", "-9223372036854775809"),
        ] {
            let Some(Bson::Decimal128(d)) = doc.get(key) else {
                panic!("{key}: {doc}");
            };
            assert_eq!(d.to_string(), text, "{key}");
        }
        assert_eq!(doc.get_str("s").unwrap(), "99999999999999999999999");
        let Some(Bson::Array(n)) = doc.get("n") else {
            panic!("{doc}");
        };
        assert!(matches!(n[0], Bson::Decimal128(_)));
        assert_eq!(
            plain(r#"{"i":9223372036854775807}"#)
                .as_document()
                .unwrap()
                .get_i64("i")
                .unwrap(),
            i64::MAX
        );
        assert_eq!(
            plain(r#"{"i":7}"#)
                .as_document()
                .unwrap()
                .get_i32("i")
                .unwrap(),
            7
        );
        assert_eq!(
            plain(r#"{"f":1e26}"#)
                .as_document()
                .unwrap()
                .get_f64("f")
                .unwrap(),
            1e26
        );
        let err = parse(format!(r#"{{"a":{}}}"#, "9".repeat(35)).as_bytes(), false).unwrap_err();
        assert!(err.0.contains("35 digits"), "{}", err.0);
    }
}
