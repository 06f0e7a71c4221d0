//! Content checks of host files against what the pond already holds.
//!
//! A tracked file of `N` bytes has a BLAKE3 root and an outboard in the pond. Whether a host
//! file still starts with those `N` bytes is checked either by sampling (`verify: sample`: the
//! first 16 KiB block, the block holding the old end, and two blocks picked from the rest, each
//! verified against the outboard; at most 64 KiB read whatever `N` is) or by re-hashing the
//! whole prefix (`verify: full`). The block holding the old end is the tracked content's last
//! block, partial or full, so a rotation is caught even when `N` is a multiple of 16 KiB.

use crate::config::VerifyMode;
use pond_hash::{BLOCK_LEN, HashError};
use pond_store::{StoreError, Version, View};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Counts content bytes read from host files.
#[derive(Debug, Default)]
pub struct ReadCounter {
    pub bytes: u64,
}

/// Whether `file` starts with the `version.total_len` bytes of pond file `node`.
pub fn prefix_matches(
    view: &View,
    node: i64,
    version: &Version,
    file: &File,
    mode: VerifyMode,
    seed: u64,
    counter: &mut ReadCounter,
) -> Result<bool, StoreError> {
    let len = version.total_len;
    if len == 0 {
        return Ok(true);
    }
    match mode {
        VerifyMode::Full => full_prefix_matches(version, file, counter),
        VerifyMode::Sample => {
            let last = pond_hash::block_count(len) - 1;
            let mut blocks = vec![0, last];
            if last > 1 {
                let mut state = seed ^ len.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
                for _ in 0..2 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    blocks.push(1 + state % (last - 1));
                }
            }
            blocks.sort_unstable();
            blocks.dedup();
            blocks_match(view, node, version, file, &blocks, counter)
        }
    }
}

/// Whether `file`'s first block matches the pond's: a cheap filter before a full check.
pub fn first_block_matches(
    view: &View,
    node: i64,
    version: &Version,
    file: &File,
    counter: &mut ReadCounter,
) -> Result<bool, StoreError> {
    if version.total_len == 0 {
        return Ok(true);
    }
    blocks_match(view, node, version, file, &[0], counter)
}

fn blocks_match(
    view: &View,
    node: i64,
    version: &Version,
    file: &File,
    blocks: &[u64],
    counter: &mut ReadCounter,
) -> Result<bool, StoreError> {
    let len = version.total_len;
    let mut outboard = view.outboard(node, version)?;
    let mut buf = vec![0u8; BLOCK_LEN as usize];
    for &block in blocks {
        let start = block * BLOCK_LEN;
        let want = (len - start).min(BLOCK_LEN) as usize;
        let got = read_at_most(file, &mut buf[..want], start)?;
        counter.bytes += got as u64;
        if got < want {
            return Ok(false);
        }
        match pond_hash::verify_block(len, &version.root, &mut outboard, block, &buf[..want]) {
            Ok(()) => {}
            Err(StoreError::Hash(HashError::BlockMismatch { .. })) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Re-hashes the first `version.total_len` bytes of `file` and compares with the root.
pub fn full_prefix_matches(
    version: &Version,
    file: &File,
    counter: &mut ReadCounter,
) -> Result<bool, StoreError> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let want = (version.total_len - offset).min(buf.len() as u64) as usize;
        if want == 0 {
            break;
        }
        let got = read_at_most(file, &mut buf[..want], offset)?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
        offset += got as u64;
    }
    counter.bytes += offset;
    Ok(offset == version.total_len && hasher.finalize() == version.root)
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> Result<usize, StoreError> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::Source(e)),
        }
    }
    Ok(filled)
}
