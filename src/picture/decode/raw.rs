//! YCbCr JPEGs with 4:2:2 or 4:2:0 chroma -> limited-range planar 4:2:2, from zune-jpeg's
//! planes straight after the IDCT.
//!
//! Scope frames are 4:2:2 YCbCr, the very layout of YUYV and of y4m's `C422`: the planes
//! zune-jpeg holds after its IDCT only need the range squeeze (full-range JFIF to limited
//! range). Asking zune-jpeg for RGB instead makes it upsample the chroma, convert to RGB,
//! and yuvutils-rs convert back and halve the chroma again: at 1280x720 that round trip
//! cost about 0.55 ms of a 1.9 ms frame (`cargo run --release --example convert_timing`).
//! 4:2:0 frames get their chroma rows doubled with the usual triangle filter
//! (3/4 nearer row, 1/4 farther row). Every other layout, and JPEGs whose three
//! components are RGB (Adobe transform 0), goes the RGB way (`rgb.rs`).
//!
//! The squeeze is plain `u16` arithmetic the compiler vectorises (no table lookups):
//! `Y' = 16 + round(219 Y / 255)`, `C' = 128 + round(224 (C - 128) / 255)`.

use super::DecodeError;
use super::planar::{Planar422Frame, planes_mut};
use zune_core::bytestream::ZByteReaderTrait;
use zune_jpeg::{JpegDecoder, PlaneInfo};

/// How a JPEG's chroma is sampled, for the layouts this path takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chroma {
    /// Half width, full height: the planes are already 4:2:2.
    Half422,
    /// Half width, half height: chroma rows are doubled.
    Half420,
}

/// The layout of three planes (Y, Cb, Cr in frame-header order) if this path takes it.
/// Only the ratios count: encoders write 4:2:2 as luma 2x1 and chroma 1x1, or (ffmpeg,
/// many webcams) luma 2x2 and chroma 1x2.
fn chroma_of(layout: &[PlaneInfo]) -> Option<Chroma> {
    let [y, cb, cr] = layout else {
        return None;
    };
    let factors = |p: &PlaneInfo| (p.horizontal_sampling_factor, p.vertical_sampling_factor);
    let ((yh, yv), (ch, cv)) = (factors(y), factors(cb));
    if factors(cr) != (ch, cv) || ch == 0 || cv == 0 || yh != 2 * ch {
        return None;
    }
    if yv == cv {
        Some(Chroma::Half422)
    } else if yv == 2 * cv {
        Some(Chroma::Half420)
    } else {
        None
    }
}

/// Reused half-height chroma planes for 4:2:0 pictures.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    cb: Vec<u8>,
    cr: Vec<u8>,
}

impl Scratch {
    /// Bytes held, for the tests that check buffers shrink back.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.cb.capacity() + self.cr.capacity()
    }
}

/// Decodes the YCbCr JPEG in `decoder` (headers read) into `picture`, sized for the
/// `width` x `height` picture (`width` rounded up to even, an odd last column repeated).
/// Returns `Ok(false)`, having decoded and resized nothing, when the JPEG's layout is not
/// one this path takes; the caller then decodes it to RGB.
pub(super) fn decode_to_planar422<T: ZByteReaderTrait>(
    decoder: &mut JpegDecoder<T>,
    width: u32,
    height: u32,
    scratch: &mut Scratch,
    picture: &mut Planar422Frame,
) -> Result<bool, DecodeError> {
    let mut session = decoder.raw_output();
    let (Some(layout), Some(count)) = (session.layout(), session.num_components()) else {
        return Ok(false);
    };
    let Some(layout) = layout.get(..count) else {
        return Ok(false);
    };
    let Some(chroma) = chroma_of(layout) else {
        return Ok(false);
    };
    let (w, h) = (width as usize, height as usize);
    let even = w.next_multiple_of(2);
    let (chroma_w, chroma_h) = (even / 2, layout[1].height);
    // zune-jpeg's planes are `ceil(w * h_samp / h_max)` wide: the luma plane is the
    // picture, the chroma planes are `even / 2` wide. Anything else would be a decoder
    // disagreeing with the frame header; decode it the RGB way rather than guess.
    if layout[0].width != w
        || layout[0].height != h
        || layout[1..]
            .iter()
            .any(|p| p.width != chroma_w || p.height != chroma_h)
    {
        return Ok(false);
    }
    picture.width = even as u32;
    picture.height = height;
    let len = picture.expected_len();
    super::fit_buffer(&mut picture.data, len);
    let (y, u, v) = planes_mut(&mut picture.data, even, h).ok_or_else(|| {
        DecodeError::Convert(format!(
            "a planar buffer of {len} bytes for a {width}x{height} picture"
        ))
    })?;
    let strides = [even, chroma_w, chroma_w];
    // Squeezing stripe by stripe while the rows are in cache (`decode_next_imcu_row`)
    // measured no better in the whole bridge: zune-jpeg clones its entropy tables for
    // every row it hands out.
    match chroma {
        Chroma::Half422 => {
            session
                .decode_into_planes_strided(&mut [&mut *y, &mut *u, &mut *v], &strides)
                .map_err(super::corrupt)?;
            squeeze_chroma(u);
            squeeze_chroma(v);
        }
        Chroma::Half420 => {
            let half = chroma_w * chroma_h;
            super::fit_buffer(&mut scratch.cb, half);
            super::fit_buffer(&mut scratch.cr, half);
            session
                .decode_into_planes_strided(
                    &mut [&mut *y, &mut scratch.cb, &mut scratch.cr],
                    &strides,
                )
                .map_err(super::corrupt)?;
            double_rows_squeezed(&scratch.cb, chroma_w, u);
            double_rows_squeezed(&scratch.cr, chroma_w, v);
        }
    }
    squeeze_luma_rows(y, w, even);
    Ok(true)
}

/// Full-range luma rows (`stride` apart, `width` samples) -> limited range, in place; an
/// odd width's padding column repeats the last sample.
fn squeeze_luma_rows(rows: &mut [u8], width: usize, stride: usize) {
    squeeze_luma(rows);
    if stride > width {
        for row in rows.chunks_exact_mut(stride) {
            row[width] = row[width - 1];
        }
    }
}

/// Full-range luma -> limited range, in place.
fn squeeze_luma(plane: &mut [u8]) {
    for s in plane {
        *s = luma(u16::from(*s));
    }
}

/// Full-range chroma -> limited range, in place.
fn squeeze_chroma(plane: &mut [u8]) {
    for s in plane {
        *s = chroma(u16::from(*s));
    }
}

#[inline(always)]
pub(super) fn luma(y: u16) -> u8 {
    // 16 + round(219 y / 255) = (219 y + 16 * 255 + 127) / 255; at most 60052.
    ((y * 219 + 4207) / 255) as u8
}

#[inline(always)]
fn chroma(c: u16) -> u8 {
    // 128 + round(224 (c - 128) / 255) = (224 c + 31 * 128 + 127) / 255; at most 61215.
    ((c * 224 + 4095) / 255) as u8
}

/// Half-height chroma rows (`width` samples each) -> full-height rows in `out`, each
/// output row 3/4 of its nearer and 1/4 of its farther source row (edges repeat), and
/// squeezed to limited range on the way.
fn double_rows_squeezed(half: &[u8], width: usize, out: &mut [u8]) {
    let source_rows = half.len() / width.max(1);
    if width == 0 || source_rows == 0 {
        return;
    }
    for (r, dst) in out.chunks_exact_mut(width).enumerate() {
        let near = (r / 2).min(source_rows - 1);
        let far = if r % 2 == 0 {
            near.saturating_sub(1)
        } else {
            (near + 1).min(source_rows - 1)
        };
        let near = &half[near * width..][..width];
        let far = &half[far * width..][..width];
        for ((d, &n), &f) in dst.iter_mut().zip(near).zip(far) {
            *d = chroma((3 * u16::from(n) + u16::from(f) + 2) >> 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeezes_match_the_float_formulas_for_every_sample() {
        for s in 0..=255u16 {
            let y = 16.0 + 219.0 * f64::from(s) / 255.0;
            let c = 128.0 + 224.0 * (f64::from(s) - 128.0) / 255.0;
            assert!((f64::from(luma(s)) - y).abs() <= 0.5, "luma {s}");
            assert!((f64::from(chroma(s)) - c).abs() <= 0.5, "chroma {s}");
        }
        assert_eq!((luma(0), luma(255)), (16, 235));
        assert_eq!((chroma(0), chroma(128), chroma(255)), (16, 128, 240));
    }

    #[test]
    fn doubled_rows_weigh_the_nearer_row_three_times() {
        // Two source rows of one sample: 0 and 255 (full range).
        let half = [0u8, 255];
        let mut out = [0u8; 4];
        double_rows_squeezed(&half, 1, &mut out);
        let expect = [0u16, 64, 191, 255].map(chroma);
        assert_eq!(out, expect);
    }

    #[test]
    fn doubling_an_odd_height_repeats_the_last_row() {
        let half = [100u8, 200];
        let mut out = [0u8; 3];
        double_rows_squeezed(&half, 1, &mut out);
        assert_eq!(out, [100u16, 125, 175].map(chroma));
    }

    fn plane(h: usize, v: usize) -> PlaneInfo {
        let mut p = PlaneInfo::default();
        p.horizontal_sampling_factor = h;
        p.vertical_sampling_factor = v;
        p
    }

    #[test]
    fn only_half_width_chroma_layouts_take_this_path() {
        let cases = [
            ([(2, 1), (1, 1), (1, 1)], Some(Chroma::Half422)),
            ([(2, 2), (1, 2), (1, 2)], Some(Chroma::Half422)),
            ([(2, 2), (1, 1), (1, 1)], Some(Chroma::Half420)),
            ([(4, 2), (2, 1), (2, 1)], Some(Chroma::Half420)),
            ([(1, 1), (1, 1), (1, 1)], None),
            ([(2, 2), (1, 2), (1, 1)], None),
            ([(2, 1), (1, 1), (0, 0)], None),
            ([(4, 4), (2, 1), (2, 1)], None),
            ([(1, 2), (1, 1), (1, 1)], None),
            ([(2, 1), (2, 1), (1, 1)], None),
            ([(4, 1), (1, 1), (1, 1)], None),
        ];
        for (factors, want) in cases {
            let layout = factors.map(|(h, v)| plane(h, v));
            assert_eq!(chroma_of(&layout), want, "{factors:?}");
        }
        assert_eq!(chroma_of(&[plane(2, 1)]), None);
    }
}
