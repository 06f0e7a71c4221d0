//! Data files: each file node's content as independently decodable frames, plus its outboard.
//!
//! `data/<node>.<generation>.dat` holds frames back to back; each frame is at most
//! [`MAX_FRAME_RAW`] raw bytes and is either zstd or stored raw. An append cuts frames at its own
//! start and end; compaction (`compact.rs`) may later merge frames across version boundaries. A
//! node's frames may live in several generations. The catalog's `frames` table maps raw offsets
//! to (generation, file offset), so a read of any range decodes only the frames it touches.
//! `data/<node>.obao` holds the stable prefix of the post-order bao outboard (see `pond-hash`); it
//! only ever grows.
//!
//! Storing a segment runs two threads joined by a bounded channel: the caller's thread reads the
//! source and extends the BLAKE3 tree, a second one hashes the segment on its own, compresses and
//! writes. Buffers circulate between them, so memory stays at a few MiB whatever the size.

use crate::error::{IoContext, Result, StoreError};
use crate::lock::ReaderLock;
use pond_hash::TreeHasher;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

/// Largest raw size of one frame.
pub const MAX_FRAME_RAW: usize = 1 << 20;

/// Stored bytes between two background `fdatasync` requests while a segment streams in.
const FLUSH_EVERY: u64 = 32 << 20;

/// How frames are encoded when written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Raw bytes.
    None,
    /// zstd at the given level.
    Zstd(i32),
}

/// The default: zstd at a fast level.
pub const DEFAULT_COMPRESSION: Compression = Compression::Zstd(1);

impl Compression {
    /// Parses `none`, `zstd` or `zstd:LEVEL`.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || StoreError::InvalidCompression {
            value: text.to_string(),
        };
        match text.split_once(':') {
            None if text == "none" => Ok(Self::None),
            None if text == "zstd" => Ok(DEFAULT_COMPRESSION),
            Some(("zstd", level)) => match level.parse::<i32>() {
                Ok(level) if (1..=22).contains(&level) => Ok(Self::Zstd(level)),
                _ => Err(invalid()),
            },
            _ => Err(invalid()),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Zstd(level) => write!(f, "zstd:{level}"),
        }
    }
}

/// Encoding of one stored frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Raw = 0,
    Zstd = 1,
}

impl Codec {
    pub(crate) fn from_i64(value: i64) -> Option<Self> {
        match value {
            0 => Some(Self::Raw),
            1 => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// One frame: where its raw bytes belong and where its stored bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub raw_offset: u64,
    pub raw_len: u64,
    /// The data file generation holding the stored bytes.
    pub generation: i64,
    pub file_offset: u64,
    pub file_len: u64,
    pub codec: Codec,
}

impl Frame {
    pub(crate) fn raw_end(&self) -> u64 {
        self.raw_offset + self.raw_len
    }

    pub(crate) fn file_end(&self) -> u64 {
        self.file_offset + self.file_len
    }
}

/// Path of a node's data file.
pub fn data_path(pond_dir: &Path, node: i64, generation: i64) -> PathBuf {
    pond_dir
        .join("data")
        .join(format!("{node}.{generation}.dat"))
}

/// Path of a node's outboard file (stable prefix).
pub fn outboard_path(pond_dir: &Path, node: i64) -> PathBuf {
    pond_dir.join("data").join(format!("{node}.obao"))
}

/// Where a segment goes and what it continues.
pub(crate) struct SegmentTarget<'a> {
    pub data: &'a File,
    pub data_path: &'a Path,
    pub generation: i64,
    /// Data file offset where the first frame is written.
    pub data_offset: u64,
    pub outboard: &'a File,
    pub outboard_path: &'a Path,
    pub compression: Compression,
}

/// What storing a segment produced.
pub(crate) struct SegmentWritten {
    pub frames: Vec<Frame>,
    pub segment_len: u64,
    pub segment_hash: blake3::Hash,
    /// Data file length after the last frame.
    pub data_end: u64,
}

/// Reads `source` to its end (or exactly `limit` bytes) and stores it as a new segment after
/// `hasher.len()` raw bytes, extending `hasher` and the outboard.
pub(crate) fn write_segment(
    source: &mut dyn Read,
    limit: Option<u64>,
    hasher: &mut TreeHasher,
    target: &SegmentTarget<'_>,
) -> Result<SegmentWritten> {
    let start_len = hasher.len();
    let hash_segment_separately = start_len != 0;
    let mut outboard_offset = pond_hash::stable_outboard_len(start_len);
    let (to_writer, from_reader) = mpsc::sync_channel::<Vec<u8>>(2);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();

    // Write-back starts while the segment streams in, so the fsync at commit has little left.
    let (flush_tx, flush_rx) = mpsc::sync_channel::<()>(1);

    std::thread::scope(|scope| {
        let flusher = scope.spawn(move || -> Result<()> {
            for () in flush_rx {
                target.data.sync_data().at(target.data_path)?;
            }
            Ok(())
        });
        let writer = scope.spawn(move || -> Result<(Vec<Frame>, Option<blake3::Hash>, u64)> {
            let mut unflushed = 0u64;
            let mut segment_hasher = hash_segment_separately.then(blake3::Hasher::new);
            let mut encoder = FrameEncoder::new(target.compression, target.data_path)?;
            let mut frames = Vec::new();
            let mut file_offset = target.data_offset;
            let mut raw_offset = start_len;
            for buf in from_reader {
                if let Some(h) = segment_hasher.as_mut() {
                    h.update(&buf);
                }
                let (bytes, codec) = encoder.encode(&buf, target.data_path)?;
                target
                    .data
                    .write_all_at(bytes, file_offset)
                    .at(target.data_path)?;
                frames.push(Frame {
                    raw_offset,
                    raw_len: buf.len() as u64,
                    generation: target.generation,
                    file_offset,
                    file_len: bytes.len() as u64,
                    codec,
                });
                file_offset += bytes.len() as u64;
                raw_offset += buf.len() as u64;
                unflushed += bytes.len() as u64;
                if unflushed >= FLUSH_EVERY {
                    // Never waits: when a flush is already running the next one covers this too.
                    let _ = flush_tx.try_send(());
                    unflushed = 0;
                }
                // The reader may have finished already; a closed recycle channel is fine.
                let _ = recycle_tx.send(buf);
            }
            Ok((frames, segment_hasher.map(|h| h.finalize()), file_offset))
        });

        let mut stable = Vec::new();
        let mut remaining = limit;
        let mut read_result: Result<()> = Ok(());
        loop {
            let want = match remaining {
                Some(0) => break,
                Some(r) => r.min(MAX_FRAME_RAW as u64) as usize,
                None => MAX_FRAME_RAW,
            };
            let mut buf = recycle_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(MAX_FRAME_RAW));
            buf.clear();
            match fill(source, &mut buf, want) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    read_result = Err(StoreError::Source(e));
                    break;
                }
            }
            if let Some(r) = remaining.as_mut() {
                *r -= buf.len() as u64;
            }
            stable.clear();
            hasher.update(&buf, &mut stable);
            if !stable.is_empty() {
                if let Err(e) = target
                    .outboard
                    .write_all_at(&stable, outboard_offset)
                    .at(target.outboard_path)
                {
                    read_result = Err(e);
                    break;
                }
                outboard_offset += stable.len() as u64;
            }
            if to_writer.send(buf).is_err() {
                // The writer stopped on an error; join below reports it.
                break;
            }
        }
        drop(to_writer);
        let written = match writer.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match flusher.join() {
            Ok(flushed) => flushed?,
            Err(panic) => std::panic::resume_unwind(panic),
        }
        read_result?;
        let (frames, segment_hash, data_end) = written?;
        let segment_len = hasher.len() - start_len;
        if let Some(expected) = limit
            && segment_len != expected
        {
            return Err(StoreError::ShortRead {
                expected,
                read: segment_len,
            });
        }
        Ok(SegmentWritten {
            frames,
            segment_len,
            segment_hash: segment_hash.unwrap_or_else(|| hasher.root()),
            data_end,
        })
    })
}

/// Encodes raw bytes as one frame with the pond's compression.
pub(crate) struct FrameEncoder {
    compressor: Option<zstd::bulk::Compressor<'static>>,
    encoded: Vec<u8>,
}

impl FrameEncoder {
    pub(crate) fn new(compression: Compression, path: &Path) -> Result<Self> {
        let compressor = match compression {
            Compression::Zstd(level) => Some(zstd::bulk::Compressor::new(level).at(path)?),
            Compression::None => None,
        };
        Ok(Self {
            compressor,
            encoded: Vec::new(),
        })
    }

    /// The stored bytes of a frame holding `raw` (borrowed from `raw` when stored raw).
    pub(crate) fn encode<'a>(
        &'a mut self,
        raw: &'a [u8],
        path: &Path,
    ) -> Result<(&'a [u8], Codec)> {
        match self.compressor.as_mut() {
            Some(c) => {
                self.encoded.clear();
                self.encoded
                    .reserve(zstd::zstd_safe::compress_bound(raw.len()));
                c.compress_to_buffer(raw, &mut self.encoded).at(path)?;
                Ok((&self.encoded[..], Codec::Zstd))
            }
            None => Ok((raw, Codec::Raw)),
        }
    }
}

/// Reads from `source` until `buf` holds `want` bytes or the source ends.
fn fill(source: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    let mut total = 0;
    while total < want {
        let n = (&mut *source)
            .take((want - total) as u64)
            .read_to_end(buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(total)
}

/// Decodes one frame into `out` (replacing its contents) and checks its raw length.
pub(crate) fn read_frame(
    file: &File,
    path: &Path,
    node: i64,
    frame: &Frame,
    stored: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    let corrupt = |detail: String| StoreError::Corrupt { node, detail };
    match frame.codec {
        Codec::Raw => {
            out.resize(frame.raw_len as usize, 0);
            file.read_exact_at(out, frame.file_offset).at(path)?;
        }
        Codec::Zstd => {
            stored.resize(frame.file_len as usize, 0);
            file.read_exact_at(stored, frame.file_offset).at(path)?;
            out.reserve(frame.raw_len as usize);
            let mut decoder = zstd::bulk::Decompressor::new().at(path)?;
            decoder
                .decompress_to_buffer(&stored[..], out)
                .map_err(|e| {
                    corrupt(format!(
                        "frame at raw offset {} does not decode: {e}",
                        frame.raw_offset
                    ))
                })?;
        }
    }
    if out.len() as u64 != frame.raw_len {
        return Err(corrupt(format!(
            "frame at raw offset {} decodes to {} bytes, expected {}",
            frame.raw_offset,
            out.len(),
            frame.raw_len
        )));
    }
    Ok(())
}

/// Streams a byte range of a file's content, decoding only the frames it touches. Data files are
/// opened as the frames need them. A reader from a snapshot keeps the snapshot's reader lock, so
/// it stays valid after the snapshot is dropped; one from a transaction is valid while the
/// transaction is open.
pub struct ContentReader {
    dir: PathBuf,
    node: i64,
    /// Open data files by generation (a handful at most).
    files: Vec<(i64, File, PathBuf)>,
    frames: std::vec::IntoIter<Frame>,
    /// Raw offset of the next byte to return.
    pos: u64,
    end: u64,
    decoded: Vec<u8>,
    decoded_start: u64,
    stored: Vec<u8>,
    _readers: Option<Arc<ReaderLock>>,
}

impl ContentReader {
    pub(crate) fn new(
        dir: PathBuf,
        node: i64,
        frames: Vec<Frame>,
        start: u64,
        end: u64,
        readers: Option<Arc<ReaderLock>>,
    ) -> Self {
        Self {
            dir,
            node,
            files: Vec::new(),
            frames: frames.into_iter(),
            pos: start,
            end,
            decoded: Vec::new(),
            decoded_start: start,
            stored: Vec::new(),
            _readers: readers,
        }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    fn next_frame(&mut self) -> Result<bool> {
        let Some(frame) = self.frames.next() else {
            return Ok(false);
        };
        let index = match self
            .files
            .iter()
            .position(|(generation, _, _)| *generation == frame.generation)
        {
            Some(index) => index,
            None => {
                let path = data_path(&self.dir, self.node, frame.generation);
                let file = File::open(&path).at(&path)?;
                self.files.push((frame.generation, file, path));
                self.files.len() - 1
            }
        };
        let (_, file, path) = &self.files[index];
        read_frame(
            file,
            path,
            self.node,
            &frame,
            &mut self.stored,
            &mut self.decoded,
        )?;
        self.decoded_start = frame.raw_offset;
        Ok(true)
    }
}

impl Read for ContentReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.end || out.is_empty() {
            return Ok(0);
        }
        loop {
            let decoded_end = self.decoded_start + self.decoded.len() as u64;
            if self.pos >= self.decoded_start && self.pos < decoded_end {
                break;
            }
            let node = self.node;
            let gap = |detail: String| std::io::Error::other(StoreError::Corrupt { node, detail });
            if !self.next_frame().map_err(std::io::Error::other)? {
                return Err(gap(format!("no frame holds raw offset {}", self.pos)));
            }
            if self.decoded_start > self.pos {
                return Err(gap(format!(
                    "frames skip from raw offset {} to {}",
                    self.pos, self.decoded_start
                )));
            }
        }
        let decoded_end = self.decoded_start + self.decoded.len() as u64;
        let from = (self.pos - self.decoded_start) as usize;
        let upto = (self.end.min(decoded_end) - self.decoded_start) as usize;
        let n = (upto - from).min(out.len());
        out[..n].copy_from_slice(&self.decoded[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}
