//! Full-range grayscale JPEG samples -> limited-range planar 4:2:2: luma squeezed as on the
//! plane path (`raw.rs`), chroma neutral (128).

use super::raw::luma;

/// Full-range grayscale (1 byte a pixel, rows of `width`) -> limited-range planar 4:2:2
/// laid out as [`super::Planar422Frame::data`]: luma rows of `width` rounded up to even, an
/// odd last column repeated, then neutral chroma (128). A buffer of another size than
/// the planes need is left as it is.
pub fn luma_to_planar422_limited(samples: &[u8], width: usize, planar: &mut [u8]) {
    if width == 0 {
        return;
    }
    let even = width.next_multiple_of(2);
    let height = samples.len() / width;
    let Some((y_plane, u_plane, v_plane)) = super::planar::planes_mut(planar, even, height) else {
        return;
    };
    for (src, dst) in samples
        .chunks_exact(width)
        .zip(y_plane.chunks_exact_mut(even))
    {
        for (s, d) in src.iter().zip(dst.iter_mut()) {
            *d = luma(u16::from(*s));
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
    fn planar_luma_repeats_an_odd_last_column_and_has_neutral_chroma() {
        let mut out = [0u8; 16];
        luma_to_planar422_limited(&[0, 255, 128, 1, 2, 3], 3, &mut out);
        let mut want = vec![
            16,
            235,
            luma(128),
            luma(128),
            luma(1),
            luma(2),
            luma(3),
            luma(3),
        ];
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
}
