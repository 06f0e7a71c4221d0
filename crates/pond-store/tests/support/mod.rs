//! Setup shared by the store tests: a pond in a temp directory, paths, transactions that do not
//! wait for the lock, deterministic text bytes, and the checks many tests end with (`verify`
//! clean, the names in `data/`).
// Each `tests/*.rs` is its own crate that includes all of `support`; most use only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use pond_store::{Compression, Pond, PondPath, Snapshot, Transaction};
use std::collections::BTreeSet;
use std::time::Duration;

/// A lock timeout of zero: a test's writer never waits for another.
pub const NO_WAIT: Duration = Duration::ZERO;

/// A pond path from its text.
pub fn path(text: &str) -> PondPath {
    PondPath::parse(text).unwrap()
}

/// A new private pond at `TEMP/pond`; the pond lives as long as the returned directory.
pub fn new_pond(compression: Compression) -> (tempfile::TempDir, Pond) {
    let dir = tempfile::tempdir().unwrap();
    let pond = Pond::init(
        &dir.path().join("pond"),
        compression,
        pond_store::Sharing::Private,
    )
    .unwrap();
    (dir, pond)
}

/// A write transaction with argv `test`, taken without waiting.
pub fn begin(pond: &Pond) -> Transaction {
    pond.begin(vec!["test".into()], NO_WAIT).unwrap()
}

/// `len` deterministic bytes of lowercase letters (xorshift from `seed`, so zstd has something
/// to do) with a newline at every index where `newline(index)` holds.
pub fn text_bytes(len: usize, seed: u64, newline: impl Fn(usize) -> bool) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if newline(i) {
                b'\n'
            } else {
                b'a' + (state % 26) as u8
            }
        })
        .collect()
}

/// Asserts that `verify` of the whole pond finds no problem.
#[track_caller]
pub fn assert_verify_clean(snapshot: &Snapshot) {
    let report = pond_store::verify::verify(snapshot, &PondPath::root()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Names in `POND/data/`.
pub fn data_dir(pond: &Pond) -> BTreeSet<String> {
    std::fs::read_dir(pond.dir().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}
