//! Pieces of the typed fast path ([`super::trades`]): a BSON writer that builds a document by
//! hand in one buffer, serde visitors that read JSON scalars the way bson's own `Bson` visitor
//! reads them (so that the fast path stores the same types as the generic path), and known-key
//! sets for the objects it reads.
//!
//! Every failure here is a serde error or `None`, and means "not the shape the fast path takes":
//! the caller then runs the generic path, which gives the document or the reject reason.

use super::MAX_DOCUMENT;
use mongodb::bson::{Decimal128, RawDocumentBuf};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// BSON element types written by the fast path.
const STRING: u8 = 0x02;
pub(super) const DOCUMENT: u8 = 0x03;
pub(super) const ARRAY: u8 = 0x04;
const DATE_TIME: u8 = 0x09;
const NULL: u8 = 0x0A;
const INT32: u8 = 0x10;
const INT64: u8 = 0x12;
const DECIMAL128: u8 = 0x13;

/// A BSON document written by hand into one buffer: `open` a document, write its elements,
/// `close` it, and `finish` the outermost one.
///
/// Lengths are written with `as i32`: a length past `i32::MAX` only comes with a document past
/// MongoDB's 16 MiB limit, and `finish` refuses those.
pub(super) struct RawWriter(Vec<u8>);

impl RawWriter {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    /// Starts a document (or an array's body); pass the result to `close`.
    pub(super) fn open(&mut self) -> usize {
        self.0.extend_from_slice(&[0; 4]);
        self.0.len() - 4
    }

    /// Ends the document that `open` returned `start` for, writing its length.
    pub(super) fn close(&mut self, start: usize) {
        self.0.push(0);
        let len = (self.0.len() - start) as i32;
        self.0[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// An element's type and key. The keys written are the presets' own, without NUL.
    pub(super) fn key(&mut self, kind: u8, key: &str) {
        self.0.push(kind);
        self.0.extend_from_slice(key.as_bytes());
        self.0.push(0);
    }

    /// An array element's type and key: its index in decimal.
    pub(super) fn index(&mut self, kind: u8, index: usize) {
        self.0.push(kind);
        let mut digits = [0u8; 20];
        self.0
            .extend_from_slice(decimal_digits(index as u64, &mut digits));
        self.0.push(0);
    }

    pub(super) fn string(&mut self, key: &str, value: &str) {
        self.key(STRING, key);
        self.0
            .extend_from_slice(&((value.len() + 1) as i32).to_le_bytes());
        self.0.extend_from_slice(value.as_bytes());
        self.0.push(0);
    }

    pub(super) fn int(&mut self, key: &str, value: Int) {
        match value {
            Int::I32(n) => {
                self.key(INT32, key);
                self.0.extend_from_slice(&n.to_le_bytes());
            }
            Int::I64(n) => self.i64(key, n),
        }
    }

    pub(super) fn i64(&mut self, key: &str, value: i64) {
        self.key(INT64, key);
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub(super) fn date_time(&mut self, key: &str, millis: i64) {
        self.key(DATE_TIME, key);
        self.0.extend_from_slice(&millis.to_le_bytes());
    }

    pub(super) fn decimal(&mut self, key: &str, value: Decimal128) {
        self.key(DECIMAL128, key);
        self.0.extend_from_slice(&value.bytes());
    }

    pub(super) fn null(&mut self, key: &str) {
        self.key(NULL, key);
    }

    /// The finished document; `None` when it is over MongoDB's size limit (the generic path
    /// gives the reject reason).
    pub(super) fn finish(self) -> Option<RawDocumentBuf> {
        if self.0.len() > MAX_DOCUMENT {
            return None;
        }
        RawDocumentBuf::from_bytes(self.0).ok()
    }
}

/// `n` in decimal, written at the end of `digits` (20 digits hold any `u64`).
pub(super) fn decimal_digits(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[at..];
        }
    }
}

/// A JSON string, borrowed from the line unless it had escapes.
pub(super) struct Str<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// A JSON integer, typed as bson's `Bson` visitor types it: a non-negative integer is Int32
/// when it fits and Int64 otherwise, a negative one is always Int64 (serde_json hands those
/// over as `i64`), and one past `i64::MAX` is an error. A float (`1.0`, `-0`) is not an `Int`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Int {
    I32(i32),
    I64(i64),
}

impl Int {
    pub(super) fn value(self) -> i64 {
        match self {
            Int::I32(n) => i64::from(n),
            Int::I64(n) => n,
        }
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                match (i32::try_from(v), i64::try_from(v)) {
                    (Ok(n), _) => Ok(Int::I32(n)),
                    (_, Ok(n)) => Ok(Int::I64(n)),
                    _ => Err(E::custom("integer past i64")),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int::I64(v))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

/// The error every fast-path visitor returns for a line it does not take.
pub(super) fn not_the_shape<E: de::Error>() -> E {
    E::custom("not the preset's shape")
}

/// The keys one object of a preset's shape may have: an enum made by [`fields!`].
pub(super) trait Fields: Copy + 'static {
    fn parse(key: &str) -> Option<Self>;
    /// The key, in JSON and in BSON.
    fn name(self) -> &'static str;
    /// This key's bit in [`Seen`].
    fn bit(self) -> u64;
}

/// Declares an enum of an object's keys and its [`Fields`] impl (at most 64 keys).
macro_rules! fields {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $key:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        enum $name {
            $($variant,)*
        }

        impl $crate::format::raw::Fields for $name {
            fn parse(key: &str) -> Option<Self> {
                match key {
                    $($key => Some(Self::$variant),)*
                    _ => None,
                }
            }
            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $key,)*
                }
            }
            fn bit(self) -> u64 {
                1 << self as u32
            }
        }
    };
}
pub(super) use fields;

/// An object key that is one of `F`'s; any other key is an error.
pub(super) struct Known<F>(pub F);

impl<'de, F: Fields> Deserialize<'de> for Known<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<F>(PhantomData<F>);
        impl<F: Fields> Visitor<'_> for KeyVisitor<F> {
            type Value = Known<F>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a known key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Known<F>, E> {
                F::parse(v).map(Known).ok_or_else(not_the_shape)
            }
        }
        deserializer.deserialize_identifier(KeyVisitor(PhantomData))
    }
}

/// The keys seen so far in one object. A repeated key is an error: bson keeps the last value
/// at the first one's place, and the generic path does that.
#[derive(Default)]
pub(super) struct Seen(u64);

impl Seen {
    pub(super) fn first<F: Fields, E: de::Error>(&mut self, field: F) -> Result<(), E> {
        let bit = field.bit();
        if self.0 & bit != 0 {
            return Err(not_the_shape());
        }
        self.0 |= bit;
        Ok(())
    }
}
