//! Checks the incremental root against `blake3::hash` and the outboard against `bao-tree`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use bao_tree::BlockSize;
use bao_tree::io::outboard::PostOrderMemOutboard;
use proptest::prelude::*;

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

fn reference_outboard(data: &[u8]) -> Vec<u8> {
    PostOrderMemOutboard::create(data, BlockSize::from_chunk_log(4)).data
}

/// Hashes `data` in the given append sizes and checks every intermediate state.
fn check_appends(data: &[u8], appends: &[usize]) {
    let mut hasher = TreeHasher::new();
    let mut stable = Vec::new();
    let mut offset = 0;
    for &size in appends {
        let end = (offset + size).min(data.len());
        hasher.update(&data[offset..end], &mut stable);
        offset = end;
        let prefix = &data[..offset];
        assert_eq!(hasher.root(), blake3::hash(prefix), "root at {offset}");
        assert_eq!(stable.len() as u64, stable_outboard_len(offset as u64));
        let mut full = stable.clone();
        full.extend_from_slice(&hasher.unstable_outboard());
        assert_eq!(full.len() as u64, outboard_len(offset as u64));
        assert_eq!(full, reference_outboard(prefix), "outboard at {offset}");
        // Persist and resume: the resumed state must behave identically.
        let resumed =
            TreeHasher::resume(offset as u64, &hasher.frontier_cvs(), hasher.last_block()).unwrap();
        assert_eq!(resumed.root(), hasher.root());
        hasher = resumed;
    }
}

#[test]
fn roots_at_boundary_sizes_match_blake3() {
    let data = content(1 << 20 | 1025, 7);
    let mut sizes = vec![0, 1, 1023, 1024, 1025, 2048, 16383, 16384, 16385];
    for k in 0..=6 {
        let size = (16 * 1024) << k;
        sizes.extend([size - 1, size, size + 1]);
    }
    for size in sizes {
        let mut hasher = TreeHasher::new();
        let mut stable = Vec::new();
        hasher.update(&data[..size], &mut stable);
        assert_eq!(hasher.root(), blake3::hash(&data[..size]), "size {size}");
        let mut full = stable;
        full.extend_from_slice(&hasher.unstable_outboard());
        assert_eq!(
            full,
            reference_outboard(&data[..size]),
            "outboard size {size}"
        );
    }
}

#[test]
fn appends_ending_on_chunk_and_block_boundaries() {
    let data = content(300 * 1024, 3);
    check_appends(
        &data,
        &[1024, 1024, 14 * 1024, 16 * 1024, 1, 16383, 32 * 1024, 1024],
    );
    check_appends(&data, &[16 * 1024; 12]);
}

#[test]
fn verify_block_accepts_every_block_and_rejects_a_flipped_byte() {
    for len in [1usize, 16384, 16385, 5 * 16384 + 7, 13 * 16384] {
        let data = content(len, 9);
        let root = blake3::hash(&data);
        let outboard = reference_outboard(&data);
        let blocks = block_count(len as u64);
        for block in 0..blocks {
            let start = (block * BLOCK_LEN) as usize;
            let end = (start + BLOCK_LEN as usize).min(len);
            let mut source: &[u8] = &outboard;
            verify_block(len as u64, &root, &mut source, block, &data[start..end]).unwrap();
            let mut bad = data[start..end].to_vec();
            bad[0] ^= 1;
            let mut source: &[u8] = &outboard;
            assert!(verify_block(len as u64, &root, &mut source, block, &bad).is_err());
        }
    }
}

#[test]
fn verify_block_rejects_a_corrupt_outboard_node() {
    let data = content(9 * 16384, 1);
    let root = blake3::hash(&data);
    let mut outboard = reference_outboard(&data);
    outboard[5] ^= 0x40;
    let mut source: &[u8] = &outboard;
    let err = verify_block(data.len() as u64, &root, &mut source, 0, &data[..16384]);
    assert!(err.is_err());
}

#[test]
fn resume_rejects_a_frontier_of_the_wrong_shape() {
    let err = TreeHasher::resume(3 * BLOCK_LEN + 5, &[0u8; 32], &[0u8; 5]).unwrap_err();
    assert!(matches!(err, HashError::FrontierCvs { .. }));
    let err = TreeHasher::resume(3 * BLOCK_LEN + 5, &[0u8; 64], &[0u8; 4]).unwrap_err();
    assert!(matches!(err, HashError::FrontierPending { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random append sequences: the root equals `blake3::hash` and the outboard equals
    /// bao-tree's after every append, and the stable prefix only ever grows.
    #[test]
    fn random_appends_match_blake3_and_bao_tree(
        appends in proptest::collection::vec(
            prop_oneof![0usize..64, 1000usize..1100, 16_000usize..17_000, 60_000usize..70_000],
            1..12,
        ),
        seed in any::<u8>(),
    ) {
        let total: usize = appends.iter().sum();
        let data = content(total, seed);
        check_appends(&data, &appends);
    }

    #[test]
    fn layout_arithmetic_is_consistent(len in 0u64..(1 << 40)) {
        let stable = stable_outboard_len(len);
        let full = outboard_len(len);
        prop_assert!(stable <= full);
        prop_assert_eq!(full - stable, frontier_cv_count(len) as u64 * NODE_LEN);
        prop_assert!(pending_len(len) <= BLOCK_LEN);
        prop_assert_eq!(complete_blocks(len) * BLOCK_LEN + pending_len(len), len);
    }
}
