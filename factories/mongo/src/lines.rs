//! Splitting a byte stream into lines with their offsets, in bounded memory.
//!
//! A line of [`MAX_LINE`] bytes or more (16 MiB: no MongoDB document could hold it) is not kept
//! in memory: once the bytes since the last newline reach that length, the splitter keeps only the
//! line's start offset and its first [`DEAD_LETTER_RAW`] bytes and scans on for the newline;
//! the line then comes out as [`Item::TooLong`] with its length, to be dead-lettered. While it
//! scans, [`LineSplitter::scanning`] says where it is, so a run that stops (its budget, a stop
//! request) can record how far it looked, and the next run goes on from there
//! ([`LineSplitter::resume`]) instead of reading the line again from its start.

use crate::sink::DEAD_LETTER_RAW;

/// Lines this long or longer are dead-lettered by their length instead of kept whole.
pub const MAX_LINE: usize = crate::format::MAX_DOCUMENT;

/// What the splitter found.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A complete line (without its newline) at this offset.
    Line(u64, &'a [u8]),
    /// A complete line of [`MAX_LINE`] bytes or more: its offset, its length (without the
    /// newline) and its first bytes.
    TooLong {
        offset: u64,
        len: u64,
        head: Vec<u8>,
    },
}

/// A line longer than [`MAX_LINE`] being scanned for its end.
#[derive(Debug, Clone)]
struct Long {
    start: u64,
    head: Vec<u8>,
}

/// Splits a byte stream into lines, tracking their offsets.
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    start: usize,
    /// File offset of `buf[start]` (while scanning a long line: how far it was scanned).
    base: u64,
    /// Items returned so far.
    pub count: u64,
    max_line: usize,
    long: Option<Long>,
    /// A long line whose end was found in the last push, to return first.
    finished_long: Option<(Long, u64)>,
}

impl LineSplitter {
    /// A splitter of the stream from file offset `base`.
    pub fn new(base: u64) -> Self {
        Self::with_max_line(base, MAX_LINE)
    }

    fn with_max_line(base: u64, max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            base,
            count: 0,
            max_line,
            long: None,
            finished_long: None,
        }
    }

    /// A splitter that goes on scanning a long line that starts at `start` (whose first bytes
    /// are `head`) and was scanned up to `scanned`; the stream goes on from `scanned`.
    pub fn resume(start: u64, scanned: u64, head: Vec<u8>) -> Self {
        let mut splitter = Self::new(scanned);
        splitter.long = Some(Long { start, head });
        splitter
    }

    /// Adds the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if let Some(long) = self.long.take() {
            match bytes.iter().position(|&b| b == b'\n') {
                None => {
                    self.base += bytes.len() as u64;
                    self.long = Some(long);
                    return;
                }
                Some(newline) => {
                    let end = self.base + newline as u64;
                    self.finished_long = Some((long, end));
                    self.base = end + 1;
                    self.buf.clear();
                    self.start = 0;
                    self.buf.extend_from_slice(&bytes[newline + 1..]);
                    return;
                }
            }
        }
        // Drop consumed lines once per chunk, not once per line.
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, or `None` until more bytes come.
    pub fn next_item(&mut self) -> Option<Item<'_>> {
        if let Some((long, end)) = self.finished_long.take() {
            self.count += 1;
            return Some(Item::TooLong {
                offset: long.start,
                len: end - long.start,
                head: long.head,
            });
        }
        if self.long.is_some() {
            return None;
        }
        let pending = &self.buf[self.start..];
        let Some(newline) = pending.iter().position(|&b| b == b'\n') else {
            if pending.len() >= self.max_line {
                // No newline within the longest line kept: keep its start and head, scan on.
                // (At the limit already, so a run whose budget is the limit moves on.)
                self.long = Some(Long {
                    start: self.base,
                    head: pending[..self.head_len()].to_vec(),
                });
                self.base += pending.len() as u64;
                self.buf.clear();
                self.start = 0;
            }
            return None;
        };
        let line = self.start..self.start + newline;
        let offset = self.base;
        self.base += newline as u64 + 1;
        self.start = line.end + 1;
        self.count += 1;
        if newline >= self.max_line {
            let head = line.start..line.start + self.head_len();
            return Some(Item::TooLong {
                offset,
                len: newline as u64,
                head: self.buf[head].to_vec(),
            });
        }
        Some(Item::Line(offset, &self.buf[line]))
    }

    /// Bytes of a long line's start kept for its dead letter (a long line has more).
    fn head_len(&self) -> usize {
        DEAD_LETTER_RAW.min(self.max_line)
    }

    /// Offset just after the last complete line returned.
    pub fn consumed(&self) -> u64 {
        match &self.long {
            Some(long) => long.start,
            None => self.base,
        }
    }

    /// While scanning a long line: where it starts and how far it was scanned.
    pub fn scanning(&self) -> Option<(u64, u64)> {
        self.long.as_ref().map(|long| (long.start, self.base))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Everything a splitter gives for `text` fed in `chunks`-sized pieces.
    fn split(text: &[u8], chunk: usize, max_line: usize) -> (Vec<(u64, Vec<u8>, bool)>, u64) {
        let mut lines = LineSplitter::with_max_line(100, max_line);
        let mut out = Vec::new();
        for piece in text.chunks(chunk.max(1)) {
            lines.push(piece);
            while let Some(item) = lines.next_item() {
                out.push(match item {
                    Item::Line(offset, line) => (offset, line.to_vec(), false),
                    Item::TooLong { offset, len, head } => {
                        (offset, format!("{len}:{}", head.len()).into_bytes(), true)
                    }
                });
            }
            // Memory stays bounded by the longest line kept and the chunk.
            assert!(lines.buf.len() <= max_line + chunk + 1);
        }
        (out, lines.consumed())
    }

    /// Lines split across chunk boundaries come out whole with their offsets; a partial last
    /// line stays until its newline arrives.
    #[test]
    fn lines_keep_offsets_across_chunks_and_partial_lines_wait() {
        let (out, consumed) = split(b"ab\n\ncdef\ng", 3, MAX_LINE);
        assert_eq!(
            out,
            vec![
                (100, b"ab".to_vec(), false),
                (103, Vec::new(), false),
                (104, b"cdef".to_vec(), false)
            ]
        );
        assert_eq!(consumed, 109);
    }

    // Regression: a line over the limit was held whole and, past a run's budget, never
    // finished. It comes out by its length, and a run that stops inside it records how far it
    // looked; the next run goes on from there.
    #[test]
    fn long_lines_come_out_by_length_and_scans_resume() {
        let mut text = b"a\n".to_vec();
        text.extend(vec![b'x'; 50]);
        text.extend(b"\nb\n");
        let (out, consumed) = split(&text, 7, 10);
        assert_eq!(
            out,
            vec![
                (100, b"a".to_vec(), false),
                (102, b"50:10".to_vec(), true),
                (153, b"b".to_vec(), false),
            ]
        );
        assert_eq!(consumed, 155);
        // Stopped inside the long line after 30 bytes: resumed, it ends the same.
        let mut first = LineSplitter::with_max_line(100, 10);
        first.push(&text[..32]);
        while first.next_item().is_some() {}
        let (start, scanned) = first.scanning().unwrap();
        assert_eq!((start, scanned, first.consumed()), (102, 132, 102));
        let mut second = LineSplitter::resume(start, scanned, b"xx".to_vec());
        second.max_line = 10;
        second.push(&text[32..]);
        assert_eq!(
            second.next_item(),
            Some(Item::TooLong {
                offset: 102,
                len: 50,
                head: b"xx".to_vec()
            })
        );
        assert!(matches!(second.next_item(), Some(Item::Line(153, b"b"))));
    }

    proptest! {
        /// However the stream is cut, the same items come out, and memory stays bounded.
        #[test]
        fn any_chunking_gives_the_same_items(
            lens in proptest::collection::vec(0usize..40, 0..20),
            chunk in 1usize..50,
            tail in 0usize..30,
        ) {
            let mut text = Vec::new();
            for (i, len) in lens.iter().enumerate() {
                text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, *len));
                text.push(b'\n');
            }
            text.extend(std::iter::repeat_n(b'z', tail));
            let whole = split(&text, text.len().max(1), 16);
            let cut = split(&text, chunk, 16);
            prop_assert_eq!(whole, cut);
        }
    }
}
