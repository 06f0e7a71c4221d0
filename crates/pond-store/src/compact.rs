//! Compaction: merging runs of small frames into frames of up to [`COMPACTED_FRAME_RAW`] raw
//! bytes,
//! across version boundaries, without changing a single content byte, hash or offset.
//!
//! Many small appends (a `follow` committing every few seconds) leave one small zstd frame per
//! version. [`Transaction::compact`] rewrites them:
//!
//! 1. **Plan** (catalog only, no data read; [`plan`]): small frames are those under
//!    [`CompactLimits::min_frame`] raw bytes. Within one data file generation, walking back from
//!    its last frame (in file order) while the work stays within [`CompactLimits::max_bytes`],
//!    the rewrite starts at the earliest small frame that has a small raw neighbour in the same
//!    generation. Everything from there to the end of that generation is the *suffix*. When
//!    re-framing it would not lower the frame count, there is nothing to do.
//! 2. **Layout** ([`layout`]): the suffix in raw order; runs of raw-adjacent small frames are
//!    decoded and cut into frames of [`COMPACTED_FRAME_RAW`] (the last one of a run shorter); a
//!    frame
//!    that is not small is copied as stored, unchanged.
//! 3. **Write**: the new frames go to another writable generation of the node (or a new one,
//!    unless the node has [`MAX_GENERATIONS`] already: then compaction waits for retired ones to
//!    be removed), past its committed length, exactly like appended bytes: fsynced at commit, cut
//!    by the next writer if the transaction dies (`journal`).
//! 4. **Retire**: the suffix's old bytes are now dead; since they are the generation's tail, the
//!    generation keeps `keep_len` bytes and the rest is retired (`retire.rs`), removed by a later
//!    writer once no snapshot can read it.
//!
//! Rewriting only a generation's tail means dead bytes are always a tail (cut) or a whole file
//! (removed), never a hole. In the steady state of `follow` two generations alternate: the tail
//! of one is compacted into the other while the first one's retired tail waits for removal.
//!
//! Versions, roots, segment hashes, frontiers and the outboard are over raw bytes and do not
//! change; only `frames`, `data_files` and `retired` rows do.

use crate::data::{self, Frame, FrameEncoder, MAX_FRAME_RAW};

/// Raw bytes of a frame compaction writes (the last of a run shorter). Larger than an append's
/// [`MAX_FRAME_RAW`] so that a day of data needs few frame rows (about 30,000 for 120 GB), while
/// reading any byte still decodes at most this much.
pub const COMPACTED_FRAME_RAW: usize = 4 << 20;
use crate::error::{IoContext, Result, StoreError};
use crate::path::PondPath;
use crate::txn::{Transaction, WriteTarget, insert_frames, set_data_len};
use crate::view::{Node, NodeKind};
use rusqlite::params;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Compaction creates no generation beyond this many (live or retired) per node: while open
/// snapshots keep retired generations from being removed, it waits instead of spreading a file
/// over ever more data files.
pub(crate) const MAX_GENERATIONS: usize = 4;

/// How much one compaction call may do, and what counts as a small frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactLimits {
    /// Work per call: raw bytes re-encoded plus stored bytes copied. Bounds how long a caller
    /// holding the writer lock is busy.
    pub max_bytes: u64,
    /// Frames with fewer raw bytes than this are merged (capped at [`MAX_FRAME_RAW`], the
    /// largest frame an append writes).
    pub min_frame: u64,
}

impl Default for CompactLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            min_frame: 256 << 10,
        }
    }
}

/// What compacting one file did. Frame and stored byte counts are for the whole file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    pub frames_before: u64,
    pub frames_after: u64,
    /// Raw bytes whose frames were rewritten.
    pub raw_bytes: u64,
    pub stored_bytes_before: u64,
    pub stored_bytes_after: u64,
}

impl CompactReport {
    /// Folds a later report on the same file into this one.
    pub fn then(&mut self, later: &CompactReport) {
        self.frames_after = later.frames_after;
        self.stored_bytes_after = later.stored_bytes_after;
        self.raw_bytes += later.raw_bytes;
    }
}

/// Settings key: every file changed up to this transaction has been compacted.
const COMPACTED_THROUGH_KEY: &str = "compacted_through_txn";

/// What one compaction call did: the files compacted (by path) and whether everything that
/// was to do is done (`false` when the budget ran out or a file waits for retired data files).
#[derive(Clone, Debug, Default)]
pub struct CompactPass {
    pub files: Vec<(PondPath, CompactReport)>,
    pub done: bool,
}

/// What one compaction step did.
enum Step {
    /// Rewrote frames: the report and the work it cost.
    Compacted(CompactReport, u64),
    /// Nothing worth doing now.
    Nothing,
    /// Work that waits until retired data files are removed.
    Waiting,
    /// There is work, but not within what is left of the budget.
    NeedsBudget,
}

/// One frame of the new layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A frame that is kept as stored, only moved.
    Copy(Frame),
    /// Raw bytes `raw_offset..raw_offset + raw_len`, decoded from small frames and re-encoded.
    Encode { raw_offset: u64, raw_len: u64 },
}

/// A compaction of one generation's tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub source: i64,
    /// The source generation keeps its bytes before this file offset.
    pub keep_len: u64,
    /// The frames that move, in raw order.
    pub frames: Vec<Frame>,
    pub pieces: Vec<Piece>,
    /// Raw bytes re-encoded plus stored bytes copied.
    pub cost: u64,
}

/// Raw length under which a frame is small.
fn small_limit(limits: &CompactLimits) -> u64 {
    limits.min_frame.min(MAX_FRAME_RAW as u64)
}

/// Work to move `frame`: small frames are decoded and re-encoded, others copied.
fn cost_of(frame: &Frame, small: u64) -> u64 {
    if frame.raw_len < small {
        frame.raw_len
    } else {
        frame.file_len
    }
}

/// Picks the generation tail whose rewrite removes the most frames within the budget, or
/// `None`. `frames` are all of a node's frames in raw order.
pub(crate) fn plan(frames: &[Frame], limits: &CompactLimits) -> Option<Plan> {
    let small = small_limit(limits);
    let pair = |a: &Frame, b: &Frame| a.generation == b.generation && a.raw_end() == b.raw_offset;
    let is_small = |f: &Frame| f.raw_len < small;
    let mergeable: Vec<bool> = (0..frames.len())
        .map(|i| {
            let f = &frames[i];
            let before = i > 0 && is_small(&frames[i - 1]) && pair(&frames[i - 1], f);
            let after = frames
                .get(i + 1)
                .is_some_and(|next| is_small(next) && pair(f, next));
            is_small(f) && (before || after)
        })
        .collect();
    if !mergeable.iter().any(|&m| m) {
        return None;
    }
    let mut by_generation: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, frame) in frames.iter().enumerate() {
        by_generation.entry(frame.generation).or_default().push(i);
    }
    let mut best: Option<(u64, Plan)> = None;
    for (generation, mut indices) in by_generation {
        indices.sort_by_key(|&i| frames[i].file_offset);
        let mut cost = 0u64;
        let mut start = None;
        for (position, &i) in indices.iter().enumerate().rev() {
            let c = cost_of(&frames[i], small);
            if cost + c > limits.max_bytes {
                break;
            }
            cost += c;
            if mergeable[i] {
                start = Some(position);
            }
        }
        let Some(start) = start else {
            continue;
        };
        let mut suffix: Vec<Frame> = indices[start..].iter().map(|&i| frames[i]).collect();
        let keep_len = suffix[0].file_offset;
        suffix.sort_by_key(|f| f.raw_offset);
        let pieces = layout(&suffix, small);
        if pieces.len() >= suffix.len() {
            continue;
        }
        let gain = (suffix.len() - pieces.len()) as u64;
        if best.as_ref().is_some_and(|(g, _)| *g >= gain) {
            continue;
        }
        let cost = suffix.iter().map(|f| cost_of(f, small)).sum();
        best = Some((
            gain,
            Plan {
                source: generation,
                keep_len,
                frames: suffix,
                pieces,
                cost,
            },
        ));
    }
    best.map(|(_, plan)| plan)
}

/// The new frames for `frames` (raw order): runs of raw-adjacent small frames become frames of
/// [`COMPACTED_FRAME_RAW`] bytes (the last of a run shorter), other frames are kept as they are.
pub(crate) fn layout(frames: &[Frame], small: u64) -> Vec<Piece> {
    let max = COMPACTED_FRAME_RAW as u64;
    let mut pieces = Vec::new();
    // The frame being gathered: raw start and length.
    let mut pending: Option<(u64, u64)> = None;
    let flush = |pending: &mut Option<(u64, u64)>, pieces: &mut Vec<Piece>| {
        if let Some((raw_offset, raw_len)) = pending.take() {
            pieces.push(Piece::Encode {
                raw_offset,
                raw_len,
            });
        }
    };
    let mut previous_end = None;
    for frame in frames {
        if previous_end != Some(frame.raw_offset) {
            flush(&mut pending, &mut pieces);
        }
        previous_end = Some(frame.raw_end());
        if frame.raw_len >= small {
            flush(&mut pending, &mut pieces);
            pieces.push(Piece::Copy(*frame));
            continue;
        }
        let mut offset = frame.raw_offset;
        let mut left = frame.raw_len;
        while left > 0 {
            let (start, len) = pending.unwrap_or((offset, 0));
            let take = left.min(max - len);
            pending = Some((start, len + take));
            offset += take;
            left -= take;
            if len + take == max {
                flush(&mut pending, &mut pieces);
            }
        }
    }
    flush(&mut pending, &mut pieces);
    pieces
}

impl Transaction {
    /// Merges small frames of `node` (see the module docs), within `limits.max_bytes` of work.
    /// Content bytes, versions, hashes, the outboard and every raw offset stay as they are.
    /// Returns `None`, having read no data, when there is nothing worth doing. Also removes the
    /// node's retired data files if no snapshot is open.
    pub fn compact(
        &mut self,
        node: &Node,
        limits: &CompactLimits,
    ) -> Result<Option<CompactReport>> {
        Ok(match self.compact_step(node, limits, 0)? {
            Step::Compacted(report, _) => Some(report),
            Step::Nothing | Step::Waiting | Step::NeedsBudget => None,
        })
    }

    /// One compaction of `node` with `limits.max_bytes - spent` of work left.
    fn compact_step(&mut self, node: &Node, limits: &CompactLimits, spent: u64) -> Result<Step> {
        if node.kind != NodeKind::File {
            return Err(StoreError::NotAFile {
                path: node.path.to_string(),
            });
        }
        let id = node.id;
        self.collect_garbage_of(Some(id))?;
        // Cheap first: nothing can merge without two small frames (an index range scan).
        let small_frames: u64 = self
            .view
            .row(
                "SELECT count(*) FROM frames WHERE node = ?1 AND raw_len < ?2",
                params![id, small_limit(limits)],
                |r| r.get(0),
            )
            .map_err(|e| self.view.db(e))?;
        if small_frames < 2 {
            return Ok(Step::Nothing);
        }
        let frames = self.view.all_frames(id)?;
        let budget = CompactLimits {
            max_bytes: limits.max_bytes.saturating_sub(spent),
            ..*limits
        };
        let Some(plan) = plan(&frames, &budget) else {
            if spent > 0 && plan(&frames, limits).is_some() {
                return Ok(Step::NeedsBudget);
            }
            return Ok(Step::Nothing);
        };
        let small = small_limit(limits);
        let target = match self.write_target(id, Some(plan.source))? {
            WriteTarget::Existing(generation) => generation,
            WriteTarget::New {
                generation,
                existing,
            } => {
                if existing >= MAX_GENERATIONS {
                    tracing::debug!(
                        path = %node.path,
                        existing,
                        "compaction waits for retired data files to be removed"
                    );
                    return Ok(Step::Waiting);
                }
                generation
            }
        };
        let new_frames = self.write_pieces(id, &plan, target, small)?;

        let conn = &self.view.conn;
        let db = |e| crate::catalog::at(&self.view.catalog_path, e);
        {
            let mut delete = conn
                .prepare_cached("DELETE FROM frames WHERE node = ?1 AND raw_offset = ?2")
                .map_err(db)?;
            for frame in &plan.frames {
                delete.execute(params![id, frame.raw_offset]).map_err(db)?;
            }
        }
        insert_frames(conn, id, &new_frames).map_err(db)?;
        let target_len = self
            .open
            .get(&id)
            .and_then(|n| n.generations.get(&target))
            .map_or(0, |g| g.len);
        set_data_len(conn, id, target, target_len).map_err(db)?;
        self.retire_tail(id, plan.source, plan.keep_len)?;

        let stored = |frames: &[Frame]| frames.iter().map(|f| f.file_len).sum::<u64>();
        let stored_before = stored(&frames);
        let report = CompactReport {
            frames_before: frames.len() as u64,
            frames_after: (frames.len() - plan.frames.len() + new_frames.len()) as u64,
            raw_bytes: plan.frames.iter().map(|f| f.raw_len).sum(),
            stored_bytes_before: stored_before,
            stored_bytes_after: stored_before - stored(&plan.frames) + stored(&new_frames),
        };
        tracing::debug!(
            path = %node.path,
            source = plan.source,
            target,
            frames_before = report.frames_before,
            frames_after = report.frames_after,
            raw_bytes = report.raw_bytes,
            "compacted"
        );
        Ok(Step::Compacted(report, plan.cost))
    }

    /// Writes the plan's pieces at the end of generation `target`; returns the new frames.
    fn write_pieces(
        &mut self,
        id: i64,
        plan: &Plan,
        target: i64,
        small: u64,
    ) -> Result<Vec<Frame>> {
        let source_path = data::data_path(&self.view.dir, id, plan.source);
        let source = File::open(&source_path).at(&source_path)?;
        let compression = self.compression;
        let file_mode = self.view.file_mode;
        let open = self.open_generation(id, target)?;
        let Some(out) = open.generations.get_mut(&target) else {
            return Err(StoreError::Corrupt {
                node: id,
                detail: format!("generation {target} vanished from the open set"),
            });
        };
        let lost = |detail: String| StoreError::Corrupt { node: id, detail };
        let out_file = crate::txn::open_rw(&out.path, file_mode)?;
        let mut encoder = FrameEncoder::new(compression, &out.path)?;
        let mut small_frames = plan.frames.iter().filter(|f| f.raw_len < small);
        let (mut stored, mut decoded, mut raw) = (Vec::new(), Vec::new(), Vec::new());
        let mut decoded_start = 0u64;
        let mut new_frames = Vec::with_capacity(plan.pieces.len());
        // The generation's length moves only once everything is written: after an error the
        // bytes written here are overwritten or cut at commit.
        let mut end = out.len;
        for piece in &plan.pieces {
            match *piece {
                Piece::Copy(frame) => {
                    stored.resize(frame.file_len as usize, 0);
                    source
                        .read_exact_at(&mut stored, frame.file_offset)
                        .at(&source_path)?;
                    out_file.write_all_at(&stored, end).at(&out.path)?;
                    new_frames.push(Frame {
                        generation: target,
                        file_offset: end,
                        ..frame
                    });
                    end += frame.file_len;
                }
                Piece::Encode {
                    raw_offset,
                    raw_len,
                } => {
                    raw.clear();
                    while (raw.len() as u64) < raw_len {
                        let at = raw_offset + raw.len() as u64;
                        let decoded_end = decoded_start + decoded.len() as u64;
                        if at < decoded_start || at >= decoded_end {
                            let frame = small_frames.next().ok_or_else(|| {
                                lost(format!("compaction ran out of frames at raw offset {at}"))
                            })?;
                            data::read_frame(
                                &source,
                                &source_path,
                                id,
                                frame,
                                &mut stored,
                                &mut decoded,
                            )?;
                            decoded_start = frame.raw_offset;
                            if frame.raw_offset != at {
                                return Err(lost(format!(
                                    "compaction expected raw offset {at}, the next small frame \
                                     starts at {}",
                                    frame.raw_offset
                                )));
                            }
                            continue;
                        }
                        let from = (at - decoded_start) as usize;
                        let take = (decoded_end - at).min(raw_len - raw.len() as u64) as usize;
                        raw.extend_from_slice(&decoded[from..from + take]);
                    }
                    let (bytes, codec) = encoder.encode(&raw, &out.path)?;
                    out_file.write_all_at(bytes, end).at(&out.path)?;
                    new_frames.push(Frame {
                        raw_offset,
                        raw_len,
                        generation: target,
                        file_offset: end,
                        file_len: bytes.len() as u64,
                        codec,
                    });
                    end += bytes.len() as u64;
                }
            }
        }
        out.len = end;
        Ok(new_frames)
    }

    /// Compacts every file at or below `under`, in path order, until nothing is left to do or
    /// `limits.max_bytes` of work is spent in this transaction. Returns each file compacted, by
    /// path; when the budget ran out, a call in a later transaction goes on, so a caller that
    /// wants everything done calls again (committing in between) until the list is empty.
    /// Walks every file below `under`: [`Transaction::compact_changed`] looks only at what
    /// changed.
    pub fn compact_all(
        &mut self,
        under: &PondPath,
        limits: &CompactLimits,
    ) -> Result<Vec<(PondPath, CompactReport)>> {
        let start = self.view.resolve(under)?;
        let files: Vec<Node> = match start.kind {
            NodeKind::File => vec![start],
            NodeKind::Dir => self
                .view
                .walk(&start)?
                .into_iter()
                .filter(|n| n.kind == NodeKind::File)
                .collect(),
            NodeKind::Factory => Vec::new(),
        };
        Ok(self.compact_files(files, limits)?.files)
    }

    /// Compacts the files changed since the last call that finished (setting
    /// `compacted_through_txn`), within `limits.max_bytes` of work. The cost follows what
    /// changed, not the pond's size. When a call finishes its work, the next one starts from
    /// the changes committed after this transaction began.
    pub fn compact_changed(&mut self, limits: &CompactLimits) -> Result<CompactPass> {
        let through = self.view.progress_setting(COMPACTED_THROUGH_KEY)?;
        let files = self.view.files_changed_since(through)?;
        let changed = !files.is_empty();
        let pass = self.compact_files(files, limits)?;
        let now_through = self.txn - 1;
        if pass.done && changed && now_through > through {
            self.set_setting(COMPACTED_THROUGH_KEY, &now_through.to_string())?;
        }
        Ok(pass)
    }

    /// Compacts `files` in order within the budget.
    fn compact_files(&mut self, files: Vec<Node>, limits: &CompactLimits) -> Result<CompactPass> {
        let mut pass = CompactPass {
            done: true,
            ..CompactPass::default()
        };
        let mut spent = 0u64;
        for file in files {
            let mut merged: Option<CompactReport> = None;
            let mut out_of_budget = false;
            loop {
                match self.compact_step(&file, limits, spent)? {
                    Step::Compacted(report, cost) => {
                        spent += cost;
                        match merged.as_mut() {
                            Some(m) => m.then(&report),
                            None => merged = Some(report),
                        }
                    }
                    Step::Nothing => break,
                    Step::Waiting => {
                        pass.done = false;
                        break;
                    }
                    Step::NeedsBudget => {
                        out_of_budget = true;
                        break;
                    }
                }
            }
            if let Some(report) = merged {
                pass.files.push((file.path, report));
            }
            if out_of_budget {
                pass.done = false;
                break;
            }
        }
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::data::Codec;
    use proptest::prelude::*;

    const KIB: u64 = 1024;

    /// Frames tiling `0..` with the given raw lengths, all in generation `generation`, stored
    /// back to back at a tenth of their size.
    fn tiled(lens: &[u64], generation: i64) -> Vec<Frame> {
        let (mut raw, mut file) = (0, 0);
        lens.iter()
            .map(|&len| {
                let frame = Frame {
                    raw_offset: raw,
                    raw_len: len,
                    generation,
                    file_offset: file,
                    file_len: len / 10 + 1,
                    codec: Codec::Zstd,
                };
                raw += len;
                file += frame.file_len;
                frame
            })
            .collect()
    }

    fn covered(pieces: &[Piece]) -> Vec<(u64, u64)> {
        pieces
            .iter()
            .map(|p| match *p {
                Piece::Copy(f) => (f.raw_offset, f.raw_len),
                Piece::Encode {
                    raw_offset,
                    raw_len,
                } => (raw_offset, raw_len),
            })
            .collect()
    }

    #[test]
    fn tiny_frames_merge_into_full_frames_across_versions() {
        let frames = tiled(&[16 * KIB; 600], 0);
        let plan = plan(&frames, &CompactLimits::default()).unwrap();
        assert_eq!(plan.source, 0);
        assert_eq!(plan.keep_len, 0);
        assert_eq!(plan.frames.len(), 600);
        assert_eq!(
            covered(&plan.pieces),
            [
                (0, 4 << 20),
                (4 << 20, 4 << 20),
                (8 << 20, 600 * 16 * KIB - (8 << 20))
            ]
        );
    }

    #[test]
    fn big_frames_stay_and_only_the_tail_moves() {
        let mut lens = vec![1 << 20; 10];
        lens.extend([4 * KIB; 8]);
        let frames = tiled(&lens, 0);
        let plan = plan(&frames, &CompactLimits::default()).unwrap();
        assert_eq!(plan.frames.len(), 8);
        assert_eq!(plan.keep_len, frames[10].file_offset);
        assert_eq!(covered(&plan.pieces), [(10 << 20, 32 * KIB)]);
    }

    #[test]
    fn nothing_to_do_without_two_adjacent_small_frames() {
        let frames = tiled(&[1 << 20, 4 * KIB, 1 << 20, 300 * KIB, 4 * KIB], 0);
        assert_eq!(plan(&frames, &CompactLimits::default()), None);
        assert_eq!(plan(&[], &CompactLimits::default()), None);
        // Already compacted output is left alone.
        let frames = tiled(&[1 << 20, 1 << 20, 100 * KIB], 1);
        assert_eq!(plan(&frames, &CompactLimits::default()), None);
    }

    #[test]
    fn the_budget_takes_the_newest_frames_first() {
        let frames = tiled(&[4 * KIB; 100], 0);
        let limits = CompactLimits {
            max_bytes: 40 * KIB,
            ..CompactLimits::default()
        };
        let plan = plan(&frames, &limits).unwrap();
        assert_eq!(plan.frames.len(), 10);
        assert_eq!(plan.frames[0].raw_offset, 90 * 4 * KIB);
        assert_eq!(plan.cost, 40 * KIB);
    }

    fn arbitrary_frames() -> impl Strategy<Value = Vec<Frame>> {
        // Raw lengths and a generation per frame; file offsets are assigned per generation in
        // raw order, like appends and compactions produce them.
        proptest::collection::vec(
            (
                prop_oneof![1u64..5_000, 200_000u64..300_000, Just(1 << 20)],
                0i64..3,
            ),
            0..80,
        )
        .prop_map(|specs| {
            let mut ends: BTreeMap<i64, u64> = BTreeMap::new();
            let mut raw = 0;
            specs
                .into_iter()
                .map(|(len, generation)| {
                    let end = ends.entry(generation).or_default();
                    let frame = Frame {
                        raw_offset: raw,
                        raw_len: len,
                        generation,
                        file_offset: *end,
                        file_len: len / 3 + 1,
                        codec: Codec::Zstd,
                    };
                    raw += len;
                    *end += frame.file_len;
                    frame
                })
                .collect()
        })
    }

    proptest! {
        /// A plan moves a whole file-order tail of one generation within the budget, and its
        /// layout covers exactly the moved raw bytes with fewer frames, none over the maximum.
        #[test]
        fn plans_move_a_generation_tail_and_keep_every_byte(
            frames in arbitrary_frames(),
            max_bytes in 0u64..4_000_000,
            min_frame in 1u64..1_200_000,
        ) {
            let limits = CompactLimits { max_bytes, min_frame };
            let Some(plan) = plan(&frames, &limits) else {
                return Ok(());
            };
            let small = small_limit(&limits);
            prop_assert!(plan.cost <= max_bytes);
            prop_assert!(plan.pieces.len() < plan.frames.len());
            let tail: Vec<Frame> = frames
                .iter()
                .filter(|f| f.generation == plan.source && f.file_offset >= plan.keep_len)
                .copied()
                .collect();
            prop_assert_eq!(&tail, &plan.frames);
            let mut expected = Vec::new();
            for piece in &plan.pieces {
                match *piece {
                    Piece::Copy(f) => prop_assert!(f.raw_len >= small),
                    Piece::Encode { raw_len, .. } => {
                        prop_assert!(raw_len > 0 && raw_len <= COMPACTED_FRAME_RAW as u64)
                    }
                }
            }
            // Same raw ranges, in order, merged where adjacent.
            let merge = |ranges: Vec<(u64, u64)>| {
                let mut out: Vec<(u64, u64)> = Vec::new();
                for (start, len) in ranges {
                    match out.last_mut() {
                        Some(last) if last.0 + last.1 == start => last.1 += len,
                        _ => out.push((start, len)),
                    }
                }
                out
            };
            for f in &plan.frames {
                expected.push((f.raw_offset, f.raw_len));
            }
            prop_assert_eq!(merge(covered(&plan.pieces)), merge(expected));
        }
    }
}
