//! Splits a concatenated MJPEG file into its JPEG frames.
//!
//! `ffmpeg -f mjpeg` and the reference viewer's `--save` write JPEGs back to
//! back with nothing in between; files cut from captures may also carry junk
//! between frames or a truncated last frame. Searching for `FF D9` alone is
//! not enough (it can appear inside APP segments, e.g. an EXIF thumbnail), so
//! each frame is walked from its SOI to its EOI with [`super::Markers`].
//! Anything that does not walk cleanly is skipped as junk.

use std::ops::Range;

use super::{self as jpeg, JpegError, Markers, START_OF_IMAGE};

/// Byte ranges of the complete JPEGs in `data`, in order.
///
/// Each range starts with `FF D8` and ends with `FF D9`. Junk between frames
/// and frames that are truncated or structurally broken are left out. Never
/// panics, whatever the input.
pub fn split_jpegs(data: &[u8]) -> Vec<Range<usize>> {
    split_counting_markers(data).0
}

/// [`split_jpegs`], plus how many markers were read in all (the work done).
fn split_counting_markers(data: &[u8]) -> (Vec<Range<usize>>, usize) {
    let mut frames = Vec::new();
    let mut search_from = 0;
    let mut walker = Walker::new(data.len());
    while let Some(start) = find_soi(data, search_from) {
        match walker.walk(data, start) {
            Walk::Complete { end } => {
                frames.push(start..end);
                search_from = end;
            }
            Walk::NewSoiAt(next) => search_from = next,
            Walk::Broken => search_from = start + 2,
        }
    }
    (frames, walker.markers_read)
}

/// What walking the markers from one SOI found.
#[derive(Debug, PartialEq, Eq)]
enum Walk {
    /// A complete JPEG ending just before `end` (exclusive).
    Complete { end: usize },
    /// Another SOI appeared where a marker was expected: the frame before it
    /// was cut short, so start over there.
    NewSoiAt(usize),
    /// Truncated or not a JPEG after all.
    Broken,
}

/// Position of the next `FF D8` at or after `from`.
fn find_soi(data: &[u8], from: usize) -> Option<usize> {
    let rest = data.get(from..)?;
    rest.windows(2)
        .position(|pair| pair == START_OF_IMAGE)
        .map(|offset| from + offset)
}

/// Walks JPEGs, remembering the marker positions of walks that failed.
///
/// After a broken walk the search restarts just after its SOI, because junk
/// (a bogus segment length, a frame cut in half) can swallow real frames that
/// a fresh walk finds. But a walk that reaches a marker position a failed walk
/// went through will fail the same way, so it stops there: without this, a
/// hostile file hiding an `FF D8` in every segment is re-walked to its end
/// from each of them, in quadratic time.
struct Walker {
    /// One bit per byte of the data: a failed walk read a marker here.
    dead: Vec<u64>,
    /// Marker positions of the walk in progress (reused between walks).
    visited: Vec<usize>,
    markers_read: usize,
}

impl Walker {
    fn new(len: usize) -> Self {
        Walker {
            dead: vec![0; len.div_ceil(64)],
            visited: Vec::new(),
            markers_read: 0,
        }
    }

    fn walk(&mut self, data: &[u8], start: usize) -> Walk {
        self.visited.clear();
        let (dead, visited) = (&self.dead, &mut self.visited);
        let walk = walk_jpeg(data, start, |pos| {
            visited.push(pos);
            // Not marked dead by an earlier failed walk.
            dead.get(pos / 64)
                .is_none_or(|word| word & (1 << (pos % 64)) == 0)
        });
        self.markers_read += self.visited.len();
        if walk == Walk::Broken {
            for &pos in &self.visited {
                if let Some(word) = self.dead.get_mut(pos / 64) {
                    *word |= 1 << (pos % 64);
                }
            }
        }
        walk
    }
}

/// Walks the JPEG whose SOI is at `start` with [`jpeg::Markers`];
/// `may_continue(pos)` is asked about each marker after the SOI.
fn walk_jpeg(data: &[u8], start: usize, mut may_continue: impl FnMut(usize) -> bool) -> Walk {
    let jpeg = data.get(start..).unwrap_or_default();
    for segment in Markers::new(jpeg).skip(1) {
        match segment {
            Ok(segment) if !may_continue(start + segment.offset) => return Walk::Broken,
            Ok(segment) if segment.code == jpeg::marker::EOI => {
                return Walk::Complete {
                    end: start + segment.end,
                };
            }
            Ok(_) => {}
            Err(JpegError::NestedStartOfImage { at }) => return Walk::NewSoiAt(start + at),
            Err(_) => return Walk::Broken,
        }
    }
    Walk::Broken
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Baseline at several samplings, with restart markers, progressive (several
    /// SOS), with an APP segment that hides a whole JPEG (FF D8 .. FF D9), grayscale.
    fn sample_jpegs() -> Vec<Vec<u8>> {
        super::super::tests::encoded_samples()
            .into_iter()
            .map(|(_, jpeg)| jpeg)
            .collect()
    }

    fn concat_with_junk(frames: &[Vec<u8>], junk: &[&[u8]]) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut data = Vec::new();
        let mut ranges = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            data.extend_from_slice(junk.get(i).copied().unwrap_or(&[]));
            ranges.push(data.len()..data.len() + frame.len());
            data.extend_from_slice(frame);
        }
        (data, ranges)
    }

    #[test]
    fn back_to_back_frames_are_split_exactly() {
        let frames = sample_jpegs();
        let (data, expected) = concat_with_junk(&frames, &[]);
        assert_eq!(split_jpegs(&data), expected);
    }

    #[test]
    fn junk_between_frames_is_skipped() {
        let frames = sample_jpegs();
        let junk: [&[u8]; 4] = [
            b"leading junk",
            &[0xFF, 0xD8, 0x00, 0x12], // SOI followed by nonsense
            &[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF], // segment longer than the file
            &[0xFF, 0xFF, 0xD9, 0xFF],
        ];
        let (mut data, expected) = concat_with_junk(&frames, &junk);
        data.extend_from_slice(b"trailing junk \xFF\xD8\xFF");
        assert_eq!(split_jpegs(&data), expected);
    }

    #[test]
    fn truncated_frame_is_dropped_and_the_next_one_kept() {
        let frames = sample_jpegs();
        let cut = &frames[0][..frames[0].len() / 2];
        let mut data = cut.to_vec();
        let start = data.len();
        data.extend_from_slice(&frames[1]);
        assert_eq!(split_jpegs(&data), vec![start..data.len()]);
        assert!(split_jpegs(cut).is_empty());
    }

    #[test]
    fn empty_and_tiny_inputs_give_nothing_or_the_minimal_jpeg() {
        assert!(split_jpegs(&[]).is_empty());
        assert!(split_jpegs(&[0xFF]).is_empty());
        assert!(split_jpegs(&[0xFF, 0xD8]).is_empty());
        assert_eq!(split_jpegs(&[0xFF, 0xD8, 0xFF, 0xD9]), vec![0..4]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_give_sane_ranges(
            data in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(0xFFu8), Just(0xD8u8), Just(0xD9u8), Just(0xDAu8)],
                0..600,
            )
        ) {
            let mut previous_end = 0;
            for range in split_jpegs(&data) {
                prop_assert!(range.start >= previous_end);
                prop_assert!(range.end <= data.len());
                prop_assert_eq!(&data[range.start..range.start + 2], &[0xFF, 0xD8]);
                prop_assert_eq!(&data[range.end - 2..range.end], &[0xFF, 0xD9]);
                previous_end = range.end;
            }
        }

        #[test]
        fn frames_survive_junk_without_marker_bytes(
            junk in proptest::collection::vec(
                proptest::collection::vec(0u8..0xFF, 0..40), 4
            )
        ) {
            let frames = sample_jpegs();
            let junk: Vec<&[u8]> = junk.iter().map(Vec::as_slice).collect();
            let (data, expected) = concat_with_junk(&frames, &junk);
            prop_assert_eq!(split_jpegs(&data), expected);
        }
    }
}

#[cfg(test)]
mod hostile_input {
    use super::*;

    /// `FF D8` then many comment segments that each hide another `FF D8`:
    /// every hidden SOI used to be re-walked to the end of the file.
    #[test]
    fn hidden_start_markers_are_not_rewalked() {
        let segments = 50_000;
        let mut data = vec![0xFF, 0xD8];
        for _ in 0..segments {
            data.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x04, 0xFF, 0xD8]);
        }
        let (frames, markers_read) = split_counting_markers(&data);
        assert!(frames.is_empty());
        assert!(
            markers_read <= 3 * segments,
            "{markers_read} markers read for {segments} segments"
        );
    }
}
