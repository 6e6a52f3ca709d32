//! Bilinear scaling of packed RGB, fixed point, no allocation once sizes are stable.
//!
//! Separable: each needed source row is first scaled horizontally (kept in two reused slots, since consecutive output rows share source rows), then two such
//! rows are blended per output row. Sample positions are pixel-centre aligned, so the
//! picture does not shift by half a pixel. Two taps per axis: for the scope's sizes (at most
//! 1.5x down to 1280x720) that is enough; extreme downscales alias a little but stay valid.
//!
//! Why hand-written rather than `fast_image_resize` or `pic-scale`: the former needs Rust
//! 1.87 (the crate's declared MSRV is 1.85), and `pic-scale` 0.6 allocates its intermediate
//! image and weight tables on every call; this is ~150 lines and keeps its tables.

/// Fraction bits of a tap weight: weights are 0..=128.
const WEIGHT_BITS: u32 = 7;
const WEIGHT_ONE: u16 = 1 << WEIGHT_BITS;

/// Where one output sample reads from: two neighbouring source positions and the weight
/// of the second (0..=128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tap {
    first: usize,
    second: usize,
    weight: u16,
}

/// Taps for scaling `source` positions to `target` positions along one axis.
/// Every tap is within `0..source`, which `scale_row` relies on.
fn taps_for(source: usize, target: usize, taps: &mut Vec<Tap>) {
    taps.clear();
    let (source, target) = (source.max(1) as u64, target.max(1) as u64);
    let last = source - 1;
    let one = u64::from(WEIGHT_ONE);
    taps.extend((0..target).map(|i| {
        // Centre of output pixel i in source pixels, times 128: ((i + 0.5) * s / t - 0.5) * 128.
        let centre = ((2 * i + 1) * source * one) / (2 * target);
        let position = centre.saturating_sub(one / 2);
        let first = (position >> WEIGHT_BITS).min(last);
        let weight = if first == last {
            0
        } else {
            (position & (one - 1)) as u16
        };
        Tap {
            first: first as usize,
            second: (first + 1).min(last) as usize,
            weight,
        }
    }));
}

/// A bilinear RGB scaler for one source size -> target size pair, rebuilt on change.
#[derive(Debug, Default)]
pub(crate) struct Scaler {
    sizes: (u32, u32, u32, u32),
    columns: Vec<Tap>,
    rows: Vec<Tap>,
    /// Two horizontally scaled source rows and which source row each holds.
    slots: [Vec<u8>; 2],
    slot_rows: [Option<usize>; 2],
}

impl Scaler {
    fn prepare(&mut self, sw: u32, sh: u32, tw: u32, th: u32) {
        if self.sizes != (sw, sh, tw, th) || self.columns.is_empty() {
            self.sizes = (sw, sh, tw, th);
            taps_for(sw as usize, tw as usize, &mut self.columns);
            taps_for(sh as usize, th as usize, &mut self.rows);
            for slot in &mut self.slots {
                slot.resize(tw as usize * 3, 0);
            }
        }
        self.slot_rows = [None, None];
    }

    /// Scales `src` (`sw` x `sh` packed RGB) into `dst` (`tw` x `th`, resized here).
    /// A `src` shorter than `sw * sh * 3` leaves `dst` black; never panics.
    pub(crate) fn scale(
        &mut self,
        src: &[u8],
        sw: u32,
        sh: u32,
        dst: &mut Vec<u8>,
        tw: u32,
        th: u32,
    ) {
        let row_len = tw as usize * 3;
        dst.resize(row_len * th as usize, 0);
        let src_row_len = sw as usize * 3;
        if src_row_len == 0 || row_len == 0 || src.len() < src_row_len * sh as usize {
            dst.fill(0);
            return;
        }
        self.prepare(sw, sh, tw, th);
        for (y, out) in dst.chunks_exact_mut(row_len).enumerate() {
            let Some(&tap) = self.rows.get(y) else { break };
            let a = self.load_row(src, src_row_len, tap.first, tap.second);
            let b = self.load_row(src, src_row_len, tap.second, tap.first);
            blend_rows(&self.slots[a], &self.slots[b], tap.weight, out);
        }
    }

    /// Makes sure source row `row` is scaled into a slot, without evicting `keep`; returns
    /// the slot index.
    fn load_row(&mut self, src: &[u8], src_row_len: usize, row: usize, keep: usize) -> usize {
        if let Some(slot) = self.slot_rows.iter().position(|&r| r == Some(row)) {
            return slot;
        }
        let slot = usize::from(self.slot_rows[0] == Some(keep));
        let line = src
            .get(row * src_row_len..(row + 1) * src_row_len)
            .unwrap_or(&[]);
        scale_row(line, &self.columns, &mut self.slots[slot]);
        self.slot_rows[slot] = Some(row);
        slot
    }
}

/// One source row -> one horizontally scaled row. A `line` too short for the taps (cannot
/// happen for a prepared scaler) leaves `out` black.
fn scale_row(line: &[u8], columns: &[Tap], out: &mut [u8]) {
    let in_range = columns
        .last()
        .is_none_or(|t| t.first.max(t.second) * 3 + 3 <= line.len());
    if !in_range {
        out.fill(0);
        return;
    }
    for (px, tap) in out.chunks_exact_mut(3).zip(columns) {
        let (a, b) = (tap.first * 3, tap.second * 3);
        let (wa, wb) = (WEIGHT_ONE - tap.weight, tap.weight);
        px[0] = lerp(line[a], line[b], wa, wb);
        px[1] = lerp(line[a + 1], line[b + 1], wa, wb);
        px[2] = lerp(line[a + 2], line[b + 2], wa, wb);
    }
}

/// `round((a * wa + b * wb) / 128)` with `wa + wb == 128`: fits u16 throughout.
#[inline(always)]
fn lerp(a: u8, b: u8, wa: u16, wb: u16) -> u8 {
    ((u16::from(a) * wa + u16::from(b) * wb + WEIGHT_ONE / 2) >> WEIGHT_BITS) as u8
}

/// Blends two horizontally scaled rows with the second's weight `weight` (0..=128).
fn blend_rows(a: &[u8], b: &[u8], weight: u16, out: &mut [u8]) {
    if weight == 0 {
        let n = out.len().min(a.len());
        out[..n].copy_from_slice(&a[..n]);
        return;
    }
    let (wa, wb) = (WEIGHT_ONE - weight, weight);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = lerp(x, y, wa, wb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale(src: &[u8], sw: u32, sh: u32, tw: u32, th: u32) -> Vec<u8> {
        let mut out = Vec::new();
        Scaler::default().scale(src, sw, sh, &mut out, tw, th);
        out
    }

    #[test]
    fn same_size_is_an_exact_copy() {
        let src: Vec<u8> = (0..5 * 3 * 3).map(|i| (i * 7) as u8).collect();
        assert_eq!(scale(&src, 5, 3, 5, 3), src);
    }

    #[test]
    fn solid_colour_stays_solid() {
        let src = [10u8, 200, 255].repeat(7 * 5);
        let out = scale(&src, 7, 5, 19, 11);
        assert!(out.chunks_exact(3).all(|p| p == [10, 200, 255]));
    }

    #[test]
    fn upscaling_interpolates_instead_of_repeating() {
        // Two pixels, black and white, stretched to eight: a ramp, not two blocks.
        let out = scale(&[0, 0, 0, 255, 255, 255], 2, 1, 8, 1);
        let reds: Vec<u8> = out.chunks_exact(3).map(|p| p[0]).collect();
        assert_eq!((reds[0], reds[7]), (0, 255));
        assert!(reds.windows(2).all(|w| w[0] <= w[1]), "{reds:?}");
        let distinct = reds.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct >= 6, "expected a ramp, got {reds:?}");
    }

    #[test]
    fn one_pixel_sources_and_targets_work() {
        assert_eq!(scale(&[9, 8, 7], 1, 1, 3, 2), [9, 8, 7].repeat(6));
        assert_eq!(scale(&[50; 4 * 4 * 3], 4, 4, 1, 1), [50, 50, 50]);
    }

    #[test]
    fn short_input_gives_black_not_a_panic() {
        assert_eq!(scale(&[1, 2, 3], 4, 4, 2, 2), [0; 12]);
    }

    #[test]
    fn taps_are_centre_aligned_and_in_range() {
        let mut taps = Vec::new();
        taps_for(4, 2, &mut taps);
        // Output pixel 0 covers source 0..2, centre 1.0 - 0.5 = 0.5.
        assert_eq!(
            taps[0],
            Tap {
                first: 0,
                second: 1,
                weight: 64
            }
        );
        assert_eq!(
            taps[1],
            Tap {
                first: 2,
                second: 3,
                weight: 64
            }
        );
        taps_for(3, 1000, &mut taps);
        assert!(
            taps.iter()
                .all(|t| t.first < 3 && t.second < 3 && t.weight <= 128)
        );
    }
}
