//! Re-reading stored bytes and checking every recorded hash and outboard.
//!
//! For each file the content is streamed once, frame by frame, through a fresh incremental
//! hasher. A frame may span versions (after compaction), so each frame's bytes are fed in pieces
//! cut at version boundaries; at every boundary the recorded cumulative length, cumulative root,
//! segment hash (where recorded: folded versions have none) and length, and tree frontier are
//! compared; the stable outboard the hasher emits is compared
//! with `data/<node>.obao` as it goes. The frame index is checked too: every frame lies within
//! its data file generation's committed length and no two frames of a generation overlap.
//! Cost: one pass over the content, memory bounded by a frame.

use crate::data::{self, Frame};
use crate::error::{IoContext, Result};
use crate::path::PondPath;
use crate::view::{Node, NodeKind, Version, View};
use pond_hash::TreeHasher;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// One problem found by [`verify`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    /// The first version affected, when the problem is in a version's bytes or records.
    pub version: Option<u64>,
    pub detail: String,
}

/// What [`verify`] checked and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub files: u64,
    pub versions: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
}

/// Verifies every file at or below `start` (the whole pond for `/`).
pub fn verify(view: &View, start: &PondPath) -> Result<Report> {
    let node = view.resolve(start)?;
    let files: Vec<Node> = match node.kind {
        NodeKind::File => vec![node],
        NodeKind::Dir => view
            .walk(&node)?
            .into_iter()
            .filter(|n| n.kind == NodeKind::File)
            .collect(),
        NodeKind::Factory => Vec::new(),
    };
    let mut report = Report::default();
    if start.is_root() {
        let check: String = view
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| view.db(e))?;
        if check != "ok" {
            report.problems.push(Problem {
                path: view.catalog_path.display().to_string(),
                version: None,
                detail: format!("catalog integrity check: {check}"),
            });
        }
    }
    for file in files {
        let versions = view.versions(file.id)?;
        report.files += 1;
        report.versions += versions.len() as u64;
        report.bytes += versions.last().map_or(0, |v| v.total_len);
        if let Err(problem) = verify_file(view, &file, &versions) {
            report.problems.push(problem);
        }
    }
    Ok(report)
}

fn verify_file(view: &View, file: &Node, versions: &[Version]) -> Result<(), Problem> {
    let problem = |version: Option<u64>, detail: String| Problem {
        path: file.path.to_string(),
        version,
        detail,
    };
    let io_problem = |e: crate::StoreError| problem(None, e.to_string());
    let Some(latest) = versions.last() else {
        return Ok(());
    };
    let frames = view
        .frames(file.id, 0, latest.total_len)
        .map_err(io_problem)?;
    let data = open_data_files(view, file, &frames).map_err(|detail| problem(None, detail))?;
    let outboard_path = data::outboard_path(&view.dir, file.id);
    let stable_len = pond_hash::stable_outboard_len(latest.total_len);
    let outboard = if stable_len > 0 {
        Some(
            File::open(&outboard_path)
                .at(&outboard_path)
                .map_err(io_problem)?,
        )
    } else {
        None
    };

    let version_of = |offset: u64| {
        versions
            .iter()
            .find(|v| v.total_len > offset)
            .map(|v| v.version)
    };
    let mut hasher = TreeHasher::new();
    let mut stable = Vec::new();
    let mut outboard_checked = 0u64;
    let mut segment = blake3::Hasher::new();
    let mut next_version = versions.iter().peekable();
    let (mut stored, mut raw) = (Vec::new(), Vec::new());
    // Versions whose content is empty end before any frame.
    check_boundaries(&mut next_version, &hasher, &mut segment, problem)?;
    for frame in &frames {
        if frame.raw_offset != hasher.len() {
            return Err(problem(
                version_of(hasher.len()),
                format!(
                    "frames jump from raw offset {} to {}",
                    hasher.len(),
                    frame.raw_offset
                ),
            ));
        }
        let Some((data_file, data_path)) = data.get(&frame.generation) else {
            return Err(problem(None, "frame without a data file".to_string()));
        };
        data::read_frame(data_file, data_path, file.id, frame, &mut stored, &mut raw)
            .map_err(|e| problem(version_of(frame.raw_offset), e.to_string()))?;
        let mut rest = &raw[..];
        while !rest.is_empty() {
            // Up to the next version boundary inside this frame, or the frame's end.
            let take = next_version
                .peek()
                .map(|v| v.total_len.saturating_sub(hasher.len()))
                .filter(|&to_boundary| to_boundary > 0 && to_boundary < rest.len() as u64)
                .map_or(rest.len(), |to_boundary| to_boundary as usize);
            let (piece, after) = rest.split_at(take);
            rest = after;
            let piece_offset = hasher.len();
            segment.update(piece);
            hasher.update(piece, &mut stable);
            if let Some(outboard) = &outboard {
                compare_outboard(outboard, outboard_checked, &stable).map_err(|detail| {
                    problem(
                        version_of(piece_offset),
                        format!("outboard {}: {detail}", outboard_path.display()),
                    )
                })?;
            }
            outboard_checked += stable.len() as u64;
            stable.clear();
            check_boundaries(&mut next_version, &hasher, &mut segment, problem)?;
        }
    }
    if hasher.len() != latest.total_len {
        return Err(problem(
            Some(latest.version),
            format!(
                "frames hold {} bytes, the catalog records {}",
                hasher.len(),
                latest.total_len
            ),
        ));
    }
    if let Some(v) = next_version.next() {
        return Err(problem(
            Some(v.version),
            "version ends past the stored frames".to_string(),
        ));
    }
    Ok(())
}

/// Opens every data file generation the frames use, checking that each frame lies within its
/// generation's committed length, that frames of a generation do not overlap, and that no file
/// is shorter than the catalog records.
fn open_data_files(
    view: &View,
    file: &Node,
    frames: &[Frame],
) -> Result<BTreeMap<i64, (File, PathBuf)>, String> {
    let recorded: BTreeMap<i64, u64> = view
        .data_files(file.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let mut by_generation: BTreeMap<i64, Vec<&Frame>> = BTreeMap::new();
    for frame in frames {
        by_generation
            .entry(frame.generation)
            .or_default()
            .push(frame);
    }
    let mut out = BTreeMap::new();
    for (generation, mut in_file) in by_generation {
        let Some(&data_len) = recorded.get(&generation) else {
            return Err(format!(
                "frames use data file generation {generation}, which the catalog does not record"
            ));
        };
        let path = data::data_path(&view.dir, file.id, generation);
        let data = File::open(&path).at(&path).map_err(|e| e.to_string())?;
        let on_disk = data.metadata().map(|m| m.len()).unwrap_or(0);
        if on_disk < data_len {
            return Err(format!(
                "data file {} has {on_disk} bytes, the catalog records {data_len}",
                path.display()
            ));
        }
        in_file.sort_by_key(|f| f.file_offset);
        let mut previous_end = 0u64;
        for frame in in_file {
            if frame.file_offset < previous_end {
                return Err(format!(
                    "frame at raw offset {} overlaps another one in {}",
                    frame.raw_offset,
                    path.display()
                ));
            }
            if frame.file_end() > data_len {
                return Err(format!(
                    "frame at raw offset {} ends at byte {} of {}, past its committed {data_len}",
                    frame.raw_offset,
                    frame.file_end(),
                    path.display()
                ));
            }
            previous_end = frame.file_end();
        }
        out.insert(generation, (data, path));
    }
    Ok(out)
}

/// Checks every version that ends at the hasher's current length.
fn check_boundaries<'a>(
    versions: &mut std::iter::Peekable<std::slice::Iter<'a, Version>>,
    hasher: &TreeHasher,
    segment: &mut blake3::Hasher,
    problem: impl Fn(Option<u64>, String) -> Problem,
) -> Result<(), Problem> {
    while let Some(v) = versions.next_if(|v| v.total_len <= hasher.len()) {
        let at = Some(v.version);
        if v.total_len != hasher.len() {
            return Err(problem(at, "version ends inside a frame".to_string()));
        }
        if hasher.root() != v.root {
            return Err(problem(
                at,
                format!("content hash {} != recorded {}", hasher.root(), v.root),
            ));
        }
        // A folded version records no segment hash; its segment is still checked by length.
        if v.segment_hash.is_some_and(|h| h != segment.finalize()) {
            return Err(problem(
                at,
                "segment hash differs from the recorded one".to_string(),
            ));
        }
        if v.segment_len != segment.count() {
            return Err(problem(
                at,
                format!(
                    "segment length {} differs from the recorded {}",
                    segment.count(),
                    v.segment_len
                ),
            ));
        }
        if hasher.frontier_cvs() != v.frontier {
            return Err(problem(
                at,
                "hash frontier differs from the recorded one".to_string(),
            ));
        }
        segment.reset();
    }
    Ok(())
}

fn compare_outboard(outboard: &File, offset: u64, expected: &[u8]) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    let mut on_disk = vec![0u8; expected.len()];
    outboard
        .read_exact_at(&mut on_disk, offset)
        .map_err(|e| format!("reading {} bytes at {offset}: {e}", expected.len()))?;
    if on_disk != expected {
        return Err(format!("nodes at byte {offset} do not match the content"));
    }
    Ok(())
}
