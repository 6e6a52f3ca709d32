//! Full-range grayscale JPEG samples -> limited-range packed YUYV or planar 4:2:2, table
//! driven.
//!
//! Rounding: `Y' = 16 + round(219 * Y / 255)`; chroma is neutral (128).
//! (`examples/convert_timing.rs` measures the same table approach on colour frames against
//! yuvutils; yuvutils won there, see `rgb.rs`.)

/// Full-range luma -> limited-range luma (0 -> 16, 255 -> 235).
static LUMA: [u8; 256] = luma_table();

const fn luma_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = (16 + (i * 219 + 127) / 255) as u8;
        i += 1;
    }
    table
}

/// Full-range grayscale (1 byte a pixel) -> limited-range YUYV with neutral chroma (128);
/// rows of `width` rounded up to even, an odd last column
/// repeated. Rows are taken while both buffers have them: mismatched lengths write less,
/// never panic.
pub fn pack_luma_full_to_yuyv_limited(luma: &[u8], width: usize, yuyv: &mut [u8]) {
    if width == 0 {
        return;
    }
    let out_row = width.next_multiple_of(2) * 2;
    for (src, dst) in luma.chunks_exact(width).zip(yuyv.chunks_exact_mut(out_row)) {
        let pairs = src.chunks_exact(2);
        let last = pairs.remainder();
        let mut out = dst.chunks_exact_mut(4);
        for (p, o) in pairs.zip(&mut out) {
            o.copy_from_slice(&[LUMA[usize::from(p[0])], 128, LUMA[usize::from(p[1])], 128]);
        }
        if let ([y], Some(o)) = (last, out.next()) {
            let l = LUMA[usize::from(*y)];
            o.copy_from_slice(&[l, 128, l, 128]);
        }
    }
}

/// Full-range grayscale (1 byte a pixel, rows of `width`) -> limited-range planar 4:2:2
/// laid out as [`super::Planar422Frame::data`]: luma rows of `width` rounded up to even, an
/// odd last column repeated, then neutral chroma (128). A buffer of another size than
/// the planes need is left as it is.
pub fn luma_to_planar422_limited(luma: &[u8], width: usize, planar: &mut [u8]) {
    if width == 0 {
        return;
    }
    let even = width.next_multiple_of(2);
    let height = luma.len() / width;
    let Some((y_plane, u_plane, v_plane)) = super::planar::planes_mut(planar, even, height) else {
        return;
    };
    for (src, dst) in luma.chunks_exact(width).zip(y_plane.chunks_exact_mut(even)) {
        for (s, d) in src.iter().zip(dst.iter_mut()) {
            *d = LUMA[usize::from(*s)];
        }
        if even > width {
            dst[width] = dst[width - 1];
        }
    }
    u_plane.fill(128);
    v_plane.fill(128);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_hits_the_limited_range_end_points() {
        assert_eq!((LUMA[0], LUMA[255]), (16, 235));
    }

    #[test]
    fn table_matches_the_float_formula() {
        for (i, &limited) in LUMA.iter().enumerate() {
            let y = 16.0 + 219.0 * i as f64 / 255.0;
            assert!((f64::from(limited) - y).abs() <= 0.5, "luma {i}");
        }
    }

    #[test]
    fn odd_width_repeats_the_last_column() {
        let mut out = [0u8; 8];
        pack_luma_full_to_yuyv_limited(&[0, 255, 128], 3, &mut out);
        assert_eq!(out, [16, 128, 235, 128, LUMA[128], 128, LUMA[128], 128]);
    }

    #[test]
    fn planar_luma_repeats_an_odd_last_column_and_has_neutral_chroma() {
        let mut out = [0u8; 16];
        luma_to_planar422_limited(&[0, 255, 128, 1, 2, 3], 3, &mut out);
        let l = |y: u8| LUMA[usize::from(y)];
        let mut want = vec![16, 235, l(128), l(128), l(1), l(2), l(3), l(3)];
        want.extend([128; 8]);
        assert_eq!(out.to_vec(), want);
    }

    #[test]
    fn planar_luma_leaves_a_buffer_of_the_wrong_size_alone() {
        let mut out = [7u8; 10];
        luma_to_planar422_limited(&[1; 6], 3, &mut out);
        luma_to_planar422_limited(&[1; 6], 0, &mut out);
        assert_eq!(out, [7; 10]);
        luma_to_planar422_limited(&[1; 6], 0, &mut []);
    }

    #[test]
    fn mismatched_buffers_do_not_panic() {
        let mut out = [0u8; 3];
        pack_luma_full_to_yuyv_limited(&[1; 10], 3, &mut out);
        pack_luma_full_to_yuyv_limited(&[1; 10], 0, &mut out);
    }
}
