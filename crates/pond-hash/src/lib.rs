//! Incremental BLAKE3 for append-only files.
//!
//! A pond file grows by appends. Rehashing the whole content on every append would cost
//! O(file size); this crate keeps just enough state to extend the hash in
//! O(appended bytes + log n) and to give, at every size, the *standard* BLAKE3 root (the hex that
//! `b3sum` prints) together with a post-order bao outboard compatible with the `bao-tree` crate
//! (block size 16 KiB, `BlockSize::from_chunk_log(4)`).
//!
//! # Layout
//! - [`TreeHasher`]: the running state. Its *frontier* is the stack of chaining values of the
//!   complete power-of-two block subtrees seen so far (one per set bit of the complete-block
//!   count) plus the bytes of the last, possibly partial, block. [`TreeHasher::update`] emits every
//!   parent node that becomes final ("stable") as bytes to append to the outboard file.
//! - The outboard of a file of length `n` is its stable prefix ([`stable_outboard_len`] bytes,
//!   never rewritten by later appends) followed by the right-edge nodes
//!   ([`TreeHasher::unstable_outboard`]), which depend on the current end and are recomputed from
//!   the frontier.
//! - [`verify_block`] checks one 16 KiB block of content against a root and an outboard, reading
//!   only the O(log n) nodes on the path to that block ([`NodeSource`]).
//!
//! # Tree shape
//! BLAKE3 splits `n` blocks into a left subtree of the largest power of two strictly below `n` and
//! a right subtree of the rest. Merging a binary-counter stack from the right reproduces exactly
//! that shape, which is why the frontier is enough to finish the root at any length.

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

/// Bytes per outboard leaf: 16 chunks of 1 KiB (bao-tree `BlockSize::from_chunk_log(4)`).
pub const BLOCK_LEN: u64 = 16 * 1024;
/// Bytes per outboard node: the left and right child chaining values.
pub const NODE_LEN: u64 = 64;
/// Bytes of one chaining value.
pub const CV_LEN: usize = 32;

/// Errors in persisted hashing state or in verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    #[error("frontier for length {len} needs {expected} chaining-value bytes, found {found}")]
    FrontierCvs {
        len: u64,
        expected: usize,
        found: usize,
    },
    #[error("frontier for length {len} needs a last block of {expected} bytes, found {found}")]
    FrontierPending {
        len: u64,
        expected: u64,
        found: usize,
    },
    #[error("block {block} is beyond the content length {len}")]
    BlockOutOfRange { block: u64, len: u64 },
    #[error("block {block} has {found} bytes, expected {expected}")]
    BlockLength {
        block: u64,
        expected: u64,
        found: usize,
    },
    #[error("outboard node {node} does not hash to its parent")]
    NodeMismatch { node: u64 },
    #[error("block {block} does not match the outboard")]
    BlockMismatch { block: u64 },
}

/// Number of complete blocks that precede the last block of a `len`-byte content.
///
/// The last block is kept pending (it might still be the root or grow), so a content of exactly
/// `k * BLOCK_LEN` bytes has `k - 1` complete blocks and a full pending block.
pub fn complete_blocks(len: u64) -> u64 {
    if len == 0 { 0 } else { (len - 1) / BLOCK_LEN }
}

/// Length of the last (pending) block of a `len`-byte content: `1..=BLOCK_LEN`, or 0 when empty.
pub fn pending_len(len: u64) -> u64 {
    len - complete_blocks(len) * BLOCK_LEN
}

/// Number of blocks (outboard leaves) of a `len`-byte content; an empty content has one.
pub fn block_count(len: u64) -> u64 {
    complete_blocks(len) + 1
}

/// Bytes of a full post-order outboard for a `len`-byte content.
pub fn outboard_len(len: u64) -> u64 {
    (block_count(len) - 1) * NODE_LEN
}

/// Bytes of the outboard prefix that no later append can change.
pub fn stable_outboard_len(len: u64) -> u64 {
    let complete = complete_blocks(len);
    (complete - u64::from(complete.count_ones())) * NODE_LEN
}

/// Number of chaining values in the frontier stack of a `len`-byte content.
pub fn frontier_cv_count(len: u64) -> usize {
    complete_blocks(len).count_ones() as usize
}

/// The chaining value of block `index` whose bytes are `block`, as a non-root subtree.
pub fn block_cv(index: u64, block: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(index * BLOCK_LEN);
    hasher.update(block);
    hasher.finalize_non_root()
}

/// Running BLAKE3 state of an append-only content. See the crate docs.
#[derive(Clone, Debug)]
pub struct TreeHasher {
    len: u64,
    /// Chaining values of complete subtrees, largest (leftmost) first.
    stack: Vec<ChainingValue>,
    /// Bytes of the last block (`pending_len(len)` of them).
    pending: Vec<u8>,
}

impl Default for TreeHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeHasher {
    /// State of the empty content.
    pub fn new() -> Self {
        Self {
            len: 0,
            stack: Vec::new(),
            pending: Vec::with_capacity(BLOCK_LEN as usize),
        }
    }

    /// Rebuilds the state of a `len`-byte content from its persisted frontier
    /// ([`TreeHasher::frontier_cvs`]) and the bytes of its last block.
    pub fn resume(len: u64, frontier_cvs: &[u8], last_block: &[u8]) -> Result<Self, HashError> {
        let expected = frontier_cv_count(len) * CV_LEN;
        if frontier_cvs.len() != expected {
            return Err(HashError::FrontierCvs {
                len,
                expected,
                found: frontier_cvs.len(),
            });
        }
        if last_block.len() as u64 != pending_len(len) {
            return Err(HashError::FrontierPending {
                len,
                expected: pending_len(len),
                found: last_block.len(),
            });
        }
        let stack = frontier_cvs
            .chunks_exact(CV_LEN)
            .map(|cv| {
                let mut out = [0u8; CV_LEN];
                out.copy_from_slice(cv);
                out
            })
            .collect();
        let mut pending = Vec::with_capacity(BLOCK_LEN as usize);
        pending.extend_from_slice(last_block);
        Ok(Self {
            len,
            stack,
            pending,
        })
    }

    /// Total bytes hashed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`, pushing every outboard node that becomes stable onto `stable_outboard`.
    pub fn update(&mut self, mut data: &[u8], stable_outboard: &mut Vec<u8>) {
        let block_len = BLOCK_LEN as usize;
        while !data.is_empty() {
            if self.pending.len() == block_len {
                // More bytes follow, so the pending block is complete and not the root.
                let block = std::mem::take(&mut self.pending);
                self.push_block(complete_blocks(self.len), &block, stable_outboard);
                self.pending = block;
                self.pending.clear();
            }
            if self.pending.is_empty() && data.len() > block_len {
                // An empty pending block means every block so far has been pushed.
                let (block, rest) = data.split_at(block_len);
                self.push_block(self.len / BLOCK_LEN, block, stable_outboard);
                self.len += BLOCK_LEN;
                data = rest;
                continue;
            }
            let take = (block_len - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            self.len += take as u64;
            data = &data[take..];
        }
    }

    /// Adds complete block `index` to the stack, merging equal-sized subtrees like a binary
    /// counter; each merge makes one stable outboard node.
    fn push_block(&mut self, index: u64, block: &[u8], stable_outboard: &mut Vec<u8>) {
        let mut cv = block_cv(index, block);
        let mut merged_count = index + 1;
        while merged_count & 1 == 0 {
            // Invariant: one stack entry per set bit of the complete-block count, so a carry
            // always finds its left sibling.
            let Some(left) = self.stack.pop() else { break };
            stable_outboard.extend_from_slice(&left);
            stable_outboard.extend_from_slice(&cv);
            cv = merge_subtrees_non_root(&left, &cv, Mode::Hash);
            merged_count >>= 1;
        }
        self.stack.push(cv);
    }

    /// The standard BLAKE3 hash of everything hashed so far (what `b3sum` prints).
    pub fn root(&self) -> blake3::Hash {
        self.fold_right_edge(|_, _| {})
    }

    /// The right-edge outboard nodes for the current length, in post order. Appended to the
    /// stable prefix they make the full bao-tree post-order outboard.
    pub fn unstable_outboard(&self) -> Vec<u8> {
        let mut nodes = Vec::with_capacity(self.stack.len() * NODE_LEN as usize);
        self.fold_right_edge(|left, right| {
            nodes.extend_from_slice(left);
            nodes.extend_from_slice(right);
        });
        nodes
    }

    fn fold_right_edge(
        &self,
        mut emit: impl FnMut(&ChainingValue, &ChainingValue),
    ) -> blake3::Hash {
        let Some((bottom, upper)) = self.stack.split_first() else {
            return blake3::hash(&self.pending);
        };
        let mut right = block_cv(complete_blocks(self.len), &self.pending);
        for left in upper.iter().rev() {
            emit(left, &right);
            right = merge_subtrees_non_root(left, &right, Mode::Hash);
        }
        emit(bottom, &right);
        merge_subtrees_root(bottom, &right, Mode::Hash)
    }

    /// The frontier stack, for persistence: [`frontier_cv_count`] chaining values back to back.
    pub fn frontier_cvs(&self) -> Vec<u8> {
        self.stack.concat()
    }

    /// Bytes of the last block.
    pub fn last_block(&self) -> &[u8] {
        &self.pending
    }
}

/// Reads outboard nodes by post-order index.
pub trait NodeSource {
    type Error: From<HashError>;
    /// The 64-byte node (left and right chaining values) at post-order position `index`.
    fn node(&mut self, index: u64) -> Result<[u8; NODE_LEN as usize], Self::Error>;
}

impl NodeSource for &[u8] {
    type Error = HashError;
    fn node(&mut self, index: u64) -> Result<[u8; NODE_LEN as usize], HashError> {
        let start = (index * NODE_LEN) as usize;
        let mut out = [0u8; NODE_LEN as usize];
        let bytes = self
            .get(start..start + NODE_LEN as usize)
            .ok_or(HashError::NodeMismatch { node: index })?;
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

/// Post-order position of the root node of the subtree over blocks `start..start + count`.
///
/// Everything left of `start` is a forest of `popcount(start)` complete subtrees, holding
/// `start - popcount(start)` nodes; the subtree's own root is the last of its `count - 1` nodes.
fn post_order_index(start: u64, count: u64) -> u64 {
    start - u64::from(start.count_ones()) + count - 2
}

/// Largest power of two strictly below `count` (`count >= 2`): the left subtree's block count.
fn left_blocks(count: u64) -> u64 {
    1 << (63 - (count - 1).leading_zeros())
}

/// Checks that `block_data` is block `block` of a `len`-byte content whose BLAKE3 root is `root`,
/// reading only the outboard nodes on the path from the root to that block.
pub fn verify_block<S: NodeSource>(
    len: u64,
    root: &blake3::Hash,
    outboard: &mut S,
    block: u64,
    block_data: &[u8],
) -> Result<(), S::Error> {
    let blocks = block_count(len);
    if block >= blocks {
        return Err(HashError::BlockOutOfRange { block, len }.into());
    }
    let expected_len = if block + 1 == blocks {
        pending_len(len)
    } else {
        BLOCK_LEN
    };
    if block_data.len() as u64 != expected_len {
        return Err(HashError::BlockLength {
            block,
            expected: expected_len,
            found: block_data.len(),
        }
        .into());
    }
    if blocks == 1 {
        return if blake3::hash(block_data) == *root {
            Ok(())
        } else {
            Err(HashError::BlockMismatch { block }.into())
        };
    }
    let (mut start, mut count) = (0u64, blocks);
    let mut expected: Option<ChainingValue> = None;
    while count > 1 {
        let index = post_order_index(start, count);
        let node = outboard.node(index)?;
        let (left, right) = split_node(&node);
        let node_ok = match &expected {
            None => merge_subtrees_root(&left, &right, Mode::Hash) == *root,
            Some(cv) => merge_subtrees_non_root(&left, &right, Mode::Hash) == *cv,
        };
        if !node_ok {
            return Err(HashError::NodeMismatch { node: index }.into());
        }
        let left_count = left_blocks(count);
        if block < start + left_count {
            expected = Some(left);
            count = left_count;
        } else {
            expected = Some(right);
            start += left_count;
            count -= left_count;
        }
    }
    match expected {
        Some(cv) if block_cv(block, block_data) == cv => Ok(()),
        _ => Err(HashError::BlockMismatch { block }.into()),
    }
}

fn split_node(node: &[u8; NODE_LEN as usize]) -> (ChainingValue, ChainingValue) {
    let mut left = [0u8; CV_LEN];
    let mut right = [0u8; CV_LEN];
    left.copy_from_slice(&node[..CV_LEN]);
    right.copy_from_slice(&node[CV_LEN..]);
    (left, right)
}

#[cfg(test)]
mod tests;
