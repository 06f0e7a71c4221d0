//! Per-node state that factories keep in the pond (cursors, per-file states, summaries), as
//! versioned JSON.
//!
//! A value is stored as its JSON object with a `format` field beside its own fields
//! (`{"format":1,"offset":42,...}`). Reading checks the format first and refuses one this
//! build does not know, so a pond written by a newer `pond` is never half-understood: the run
//! fails naming the node, the key and both formats, and changes nothing.
//!
//! Implement [`Versioned`] for a state type (serde, without `deny_unknown_fields`: the
//! `format` field sits beside its own), then [`load`] / [`decode`] / [`store`] it.

use pond_store::{StoreError, Transaction, View};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A state value with a format version.
pub trait Versioned: Serialize + DeserializeOwned {
    /// What the value is, for messages (`"mongo cursor"`).
    const WHAT: &'static str;
    /// The format this build writes and reads.
    const FORMAT: u32;
}

/// Why a state value could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what} {key:?} of node {node} does not parse: {detail}")]
    Unreadable {
        what: &'static str,
        key: String,
        node: i64,
        detail: String,
    },
    #[error(
        "{what} {key:?} of node {node} has format {found}, and this build reads format {known} \
         only (was the pond written by a newer pond?); nothing was changed"
    )]
    UnknownFormat {
        what: &'static str,
        key: String,
        node: i64,
        found: u32,
        known: u32,
    },
    #[error("encoding {what} {key:?} of node {node}: {detail}")]
    Unwritable {
        what: &'static str,
        key: String,
        node: i64,
        detail: String,
    },
}

#[derive(serde::Deserialize)]
struct Header {
    format: Option<u32>,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    format: u32,
    #[serde(flatten)]
    value: &'a T,
}

/// Reads a value stored under `key` of `node` from its bytes.
pub fn decode<T: Versioned>(node: i64, key: &str, bytes: &[u8]) -> Result<T, StateError> {
    let unreadable = |detail: String| StateError::Unreadable {
        what: T::WHAT,
        key: key.to_string(),
        node,
        detail,
    };
    let header: Header = serde_json::from_slice(bytes).map_err(|e| unreadable(e.to_string()))?;
    match header.format {
        Some(found) if found == T::FORMAT => {}
        Some(found) => {
            return Err(StateError::UnknownFormat {
                what: T::WHAT,
                key: key.to_string(),
                node,
                found,
                known: T::FORMAT,
            });
        }
        None => return Err(unreadable("it has no \"format\" field".to_string())),
    }
    serde_json::from_slice(bytes).map_err(|e| unreadable(e.to_string()))
}

/// The bytes that store `value` (with its format).
pub fn encode<T: Versioned>(node: i64, key: &str, value: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(&Envelope {
        format: T::FORMAT,
        value,
    })
    .map_err(|e| StateError::Unwritable {
        what: T::WHAT,
        key: key.to_string(),
        node,
        detail: e.to_string(),
    })
}

/// The value stored under `key` of `node`, if any.
pub fn load<T: Versioned>(view: &View, node: i64, key: &str) -> Result<Option<T>, StateError> {
    view.state(node, key)?
        .map(|bytes| decode(node, key, &bytes))
        .transpose()
}

/// Stores `value` under `key` of `node`.
pub fn store<T: Versioned>(
    txn: &mut Transaction,
    node: i64,
    key: &str,
    value: &T,
) -> Result<(), StateError> {
    txn.set_state(node, key, &encode(node, key, value)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Cursor {
        offset: u64,
        #[serde(default)]
        note: Option<String>,
    }

    impl Versioned for Cursor {
        const WHAT: &'static str = "test cursor";
        const FORMAT: u32 = 2;
    }

    /// A value round-trips with its format beside its own fields.
    #[test]
    fn values_round_trip_with_their_format() {
        let cursor = Cursor {
            offset: 42,
            note: None,
        };
        let bytes = encode(7, "k", &cursor).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"format":2,"offset":42,"note":null}"#
        );
        assert_eq!(decode::<Cursor>(7, "k", &bytes).unwrap(), cursor);
    }

    /// A format this build does not know is refused, naming node, key and both formats.
    #[test]
    fn unknown_formats_are_refused() {
        let error = decode::<Cursor>(7, "k", br#"{"format":3,"offset":1}"#).unwrap_err();
        let text = error.to_string();
        assert!(matches!(
            error,
            StateError::UnknownFormat {
                found: 3,
                known: 2,
                ..
            }
        ));
        assert!(
            text.contains("test cursor \"k\" of node 7 has format 3"),
            "{text}"
        );
        let error = decode::<Cursor>(7, "k", br#"{"offset":1}"#).unwrap_err();
        assert!(error.to_string().contains("no \"format\" field"), "{error}");
        let error = decode::<Cursor>(7, "k", b"{not json").unwrap_err();
        assert!(matches!(error, StateError::Unreadable { .. }), "{error}");
    }
}
