//! Tiny release-mode timing of the JPEG -> limited-range YUYV paths (not a test).
//!
//! `cargo run --release --example convert_timing -- FRAME.jpg`
//! Prints ms per frame for: bare RGB decode, bare YCbCr decode, yuvutils RGB->YUYV,
//! yuvutils RGB->planar 4:2:2 alone (what the y4m output needs), a scalar table
//! YCbCr->YUYV range-squeeze pack (the alternative that lost), and the in-crate `Decoder`
//! to YUYV and to planes.
use std::time::{Duration, Instant};
use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvPackedImageMut, YuvPlanarImage, YuvPlanarImageMut,
    YuvRange, YuvStandardMatrix,
};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..runs {
            f();
        }
        best = best.min(start.elapsed() / runs as u32);
    }
    best.as_secs_f64() * 1000.0
}

fn decode(jpeg: &[u8], cs: ColorSpace, out: &mut [u8]) {
    let opts = DecoderOptions::default().jpeg_set_out_colorspace(cs);
    let mut d = JpegDecoder::new_with_options(ZCursor::new(jpeg), opts);
    d.decode_into(out).expect("decode");
}

/// yuvutils' RGB -> limited-range planar 4:2:2, as the crate's decoder calls it.
fn rgb_to_planes(rgb: &[u8], w: u32, h: u32, (y, u, v): (&mut [u8], &mut [u8], &mut [u8])) {
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: w,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: w / 2,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: w / 2,
        width: w,
        height: h,
    };
    yuvutils_rs::rgb_to_yuv422(
        &mut planar,
        rgb,
        w * 3,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .expect("rgb_to_yuv422");
}

/// The measured alternative: full-range YCbCr -> limited YUYV through two tables.
static LUMA: [u8; 256] = table(219, 16);
static CHROMA: [u8; 256] = table(224, 16);

const fn table(span: usize, low: usize) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (low + (i * span + 127) / 255) as u8;
        i += 1;
    }
    t
}

#[inline(always)]
fn squeeze_chroma(a: u8, b: u8) -> u8 {
    CHROMA[(usize::from(a) + usize::from(b) + 1) >> 1]
}

/// Interleaved full-range YCbCr (3 bytes a pixel, `width` pixels a row) -> limited-range
/// YUYV rows of `width` rounded up to even; an odd last column is repeated.
///
/// Rows are taken while both buffers have them: mismatched lengths write less, never panic.
pub fn pack_ycbcr_full_to_yuyv_limited(ycbcr: &[u8], width: usize, yuyv: &mut [u8]) {
    if width == 0 {
        return;
    }
    let out_row = width.next_multiple_of(2) * 2;
    for (src, dst) in ycbcr
        .chunks_exact(width * 3)
        .zip(yuyv.chunks_exact_mut(out_row))
    {
        let pairs = src.chunks_exact(6);
        let last = pairs.remainder();
        let mut out = dst.chunks_exact_mut(4);
        for (p, o) in pairs.zip(&mut out) {
            o[0] = LUMA[usize::from(p[0])];
            o[1] = squeeze_chroma(p[1], p[4]);
            o[2] = LUMA[usize::from(p[3])];
            o[3] = squeeze_chroma(p[2], p[5]);
        }
        if let ([y, cb, cr], Some(o)) = (last, out.next()) {
            let luma = LUMA[usize::from(*y)];
            o.copy_from_slice(&[
                luma,
                CHROMA[usize::from(*cb)],
                luma,
                CHROMA[usize::from(*cr)],
            ]);
        }
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: convert_timing FRAME.jpg");
    let jpeg = std::fs::read(&path).expect("read frame");
    let mut d = JpegDecoder::new(ZCursor::new(&jpeg));
    d.decode_headers().expect("headers");
    let (w, h) = d.dimensions().expect("dims");
    let (w, h) = (w as u32, h as u32);
    let n = (w * h) as usize;
    let mut rgb = vec![0u8; n * 3];
    let mut ycc = vec![0u8; n * 3];
    let (mut yp, mut up, mut vp) = (vec![0u8; n], vec![0u8; n / 2], vec![0u8; n / 2]);
    let mut yuyv = vec![0u8; n * 2];
    let runs = 200;

    let t_rgb = best_of(runs, || decode(&jpeg, ColorSpace::RGB, &mut rgb));
    let t_ycc = best_of(runs, || decode(&jpeg, ColorSpace::YCbCr, &mut ycc));
    let t_yuvutils = best_of(runs, || {
        rgb_to_planes(&rgb, w, h, (&mut yp, &mut up, &mut vp));
        let src = YuvPlanarImage {
            y_plane: &yp,
            y_stride: w,
            u_plane: &up,
            u_stride: w / 2,
            v_plane: &vp,
            v_stride: w / 2,
            width: w,
            height: h,
        };
        let mut packed = YuvPackedImageMut {
            yuy: BufferStoreMut::Borrowed(&mut yuyv),
            yuy_stride: w * 2,
            width: w,
            height: h,
        };
        yuvutils_rs::yuv422_to_yuyv422(&mut packed, &src).expect("pack");
    });
    let t_planes = best_of(runs, || {
        rgb_to_planes(&rgb, w, h, (&mut yp, &mut up, &mut vp))
    });
    let t_pack = best_of(runs, || {
        pack_ycbcr_full_to_yuyv_limited(&ycc, w as usize, &mut yuyv)
    });
    let mut dec = scopecam::picture::decode::Decoder::new();
    let t_crate = best_of(runs, || {
        dec.decode(&jpeg).expect("crate decode");
    });
    let t_crate_planar = best_of(runs, || {
        dec.decode_planar(&jpeg).expect("crate planar decode");
    });
    println!(
        "{w}x{h}, {} bytes, ms per frame (best of 3 x {runs}):",
        jpeg.len()
    );
    println!("  zune decode to RGB            {t_rgb:.3}");
    println!("  zune decode to YCbCr          {t_ycc:.3}");
    println!("  yuvutils RGB->422p->YUYV      {t_yuvutils:.3}");
    println!("  yuvutils RGB->422p alone      {t_planes:.3}");
    println!("  scalar YCbCr->YUYV pack       {t_pack:.3}");
    println!("  RGB path total                {:.3}", t_rgb + t_yuvutils);
    println!("  YCbCr path total              {:.3}", t_ycc + t_pack);
    println!(
        "  scopecam Decoder::decode      {t_crate:.3}  ({:.2}x bare RGB decode)",
        t_crate / t_rgb
    );
    println!(
        "  scopecam Decoder::decode_planar {t_crate_planar:.3}  ({:.2}x bare RGB decode)",
        t_crate_planar / t_rgb
    );
}
