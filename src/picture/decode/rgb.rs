//! RGB -> limited-range YUYV or planar 4:2:2 through yuvutils-rs (SIMD): the path for
//! colour JPEGs the plane path (`raw.rs`) does not take (4:4:4 and other chroma layouts,
//! Adobe RGB, CMYK, YCCK) and for every picture the camera turns or scales, which
//! [`super::Decoder::decode_rgb`] hands out as RGB.
//!
//! Measured with `cargo run --release --example convert_timing -- F.jpg` on the 2-core EPYC
//! (AVX2) dev machine, 1280x720 4:2:2 ffmpeg `testsrc2` frame (52.5 KB), best of 3 x 200,
//! ms per frame, one run:
//!   zune decode to RGB 1.20 | zune decode to YCbCr 1.24
//!   yuvutils RGB -> 4:2:2 planar -> YUYV 0.20 | scalar table YCbCr -> YUYV pack 0.51
//!   => RGB + yuvutils 1.40 vs YCbCr + table pack 1.75: of zune-jpeg's upsampled outputs,
//!   RGB is the cheaper one to start from. zune-jpeg copies interleaved YCbCr out with a
//!   scalar loop where its RGB conversion uses AVX2.

use super::DecodeError;
use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvPackedImageMut, YuvPlanarImage, YuvPlanarImageMut,
    YuvRange, YuvStandardMatrix,
};

/// Reused intermediates: planar 4:2:2 and, for odd widths, an RGB copy one column wider.
#[derive(Debug, Default)]
pub struct Scratch {
    padded_rgb: Vec<u8>,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl Scratch {
    /// Bytes held, for the tests that check buffers shrink back.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        [&self.padded_rgb, &self.y, &self.u, &self.v]
            .iter()
            .map(|b| b.capacity())
            .sum()
    }
}

fn convert_error(err: yuvutils_rs::YuvError) -> DecodeError {
    DecodeError::Convert(err.to_string())
}

/// Copies `rgb` into `padded` with each row one pixel wider, repeating the last pixel.
fn pad_odd_width(rgb: &[u8], width: usize, padded: &mut Vec<u8>) {
    padded.clear();
    for row in rgb.chunks_exact(width * 3) {
        padded.extend_from_slice(row);
        let last = &row[row.len() - 3..];
        padded.extend_from_slice(last);
    }
    super::give_back_excess(padded);
}

/// `rgb` is `width * height` packed RGB; `yuyv` is the even-width output frame
/// (`width` rounded up to even, times 2, times `height` bytes). Public for the benchmarks.
pub fn rgb_to_yuyv_limited(
    rgb: &[u8],
    width: u32,
    height: u32,
    scratch: &mut Scratch,
    yuyv: &mut [u8],
) -> Result<(), DecodeError> {
    let even_width = width.next_multiple_of(2);
    let luma_len = even_width as usize * height as usize;
    super::fit_buffer(&mut scratch.y, luma_len);
    super::fit_buffer(&mut scratch.u, luma_len / 2);
    super::fit_buffer(&mut scratch.v, luma_len / 2);
    to_planar(
        rgb,
        width,
        height,
        &mut scratch.padded_rgb,
        (&mut scratch.y, &mut scratch.u, &mut scratch.v),
    )?;
    pack(
        (&scratch.y, &scratch.u, &scratch.v),
        even_width,
        height,
        yuyv,
    )
}

/// Packs a planar 4:2:2 picture into `yuyv` (`2 * width * height` bytes): the plane
/// path's YUYV.
pub(super) fn pack_planar422(
    planar: &super::Planar422Frame,
    yuyv: &mut [u8],
) -> Result<(), DecodeError> {
    pack(planar.planes(), planar.width, planar.height, yuyv)
}

/// Y, Cb, Cr planes of an even-width 4:2:2 picture -> packed YUYV, through yuvutils-rs.
fn pack(
    (y, u, v): (&[u8], &[u8], &[u8]),
    even_width: u32,
    height: u32,
    yuyv: &mut [u8],
) -> Result<(), DecodeError> {
    let planar = YuvPlanarImage {
        y_plane: y,
        y_stride: even_width,
        u_plane: u,
        u_stride: even_width / 2,
        v_plane: v,
        v_stride: even_width / 2,
        width: even_width,
        height,
    };
    let mut packed = YuvPackedImageMut {
        yuy: BufferStoreMut::Borrowed(yuyv),
        yuy_stride: even_width * 2,
        width: even_width,
        height,
    };
    yuvutils_rs::yuv422_to_yuyv422(&mut packed, &planar).map_err(convert_error)
}

/// `rgb` (`width * height` packed RGB) -> limited-range planar 4:2:2 in `planar`, laid out
/// as [`super::Planar422Frame::data`] for `width` rounded up to even: the same conversion as
/// [`rgb_to_yuyv_limited`] without packing the planes into YUYV.
pub(super) fn rgb_to_planar422_limited(
    rgb: &[u8],
    width: u32,
    height: u32,
    scratch: &mut Scratch,
    planar: &mut [u8],
) -> Result<(), DecodeError> {
    let even = width.next_multiple_of(2) as usize;
    let len = planar.len();
    let planes = super::planar::planes_mut(planar, even, height as usize).ok_or_else(|| {
        DecodeError::Convert(format!(
            "a planar buffer of {len} bytes for a {width}x{height} picture"
        ))
    })?;
    to_planar(rgb, width, height, &mut scratch.padded_rgb, planes)
}

/// RGB -> limited-range BT.601 planar 4:2:2 through yuvutils-rs, padding an odd width first.
fn to_planar(
    rgb: &[u8],
    width: u32,
    height: u32,
    padded_rgb: &mut Vec<u8>,
    (y, u, v): (&mut [u8], &mut [u8], &mut [u8]),
) -> Result<(), DecodeError> {
    let even_width = width.next_multiple_of(2);
    let rgb = if even_width == width {
        rgb
    } else {
        pad_odd_width(rgb, width as usize, padded_rgb);
        padded_rgb
    };
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: even_width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: even_width / 2,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: even_width / 2,
        width: even_width,
        height,
    };
    yuvutils_rs::rgb_to_yuv422(
        &mut planar,
        rgb,
        even_width * 3,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(convert_error)
}
