//! Quarter-turn rotation and left-right mirroring of packed RGB.
//!
//! Every combination is one linear walk: destination pixel (x, y) reads source pixel
//! `base + x * step_x + y * step_y`, so one loop serves all eight cases.

use super::Rotation;

/// Source-index walk for one rotation/mirror over a `width` x `height` source.
#[derive(Debug, Clone, Copy)]
struct Walk {
    base: isize,
    step_x: isize,
    step_y: isize,
}

/// Size of the picture after `rotation`: quarter turns swap width and height.
pub(crate) fn rotated_size(width: u32, height: u32, rotation: Rotation) -> (u32, u32) {
    match rotation {
        Rotation::None | Rotation::Cw180 => (width, height),
        Rotation::Cw90 | Rotation::Cw270 => (height, width),
    }
}

fn walk(width: usize, height: usize, rotation: Rotation, mirror: bool) -> Walk {
    let (w, h) = (width as isize, height as isize);
    // Source pixel index = sy * w + sx for destination (x, y):
    let plain = match rotation {
        // sx = x, sy = y
        Rotation::None => Walk {
            base: 0,
            step_x: 1,
            step_y: w,
        },
        // Clockwise: the source's left column becomes the top row; sx = y, sy = h-1-x.
        Rotation::Cw90 => Walk {
            base: (h - 1) * w,
            step_x: -w,
            step_y: 1,
        },
        // sx = w-1-x, sy = h-1-y
        Rotation::Cw180 => Walk {
            base: h * w - 1,
            step_x: -1,
            step_y: -w,
        },
        // The source's right column becomes the top row; sx = w-1-y, sy = x.
        Rotation::Cw270 => Walk {
            base: w - 1,
            step_x: w,
            step_y: -1,
        },
    };
    if !mirror {
        return plain;
    }
    let (out_width, _) = rotated_size(width as u32, height as u32, rotation);
    Walk {
        base: plain.base + (out_width as isize - 1) * plain.step_x,
        step_x: -plain.step_x,
        step_y: plain.step_y,
    }
}

/// Rotates then mirrors `src` (`width` x `height` packed RGB) into `dst`, resized to the
/// rotated size. A `src` shorter than `width * height * 3` leaves `dst` black, never panics.
pub fn rotate_rgb(
    src: &[u8],
    width: u32,
    height: u32,
    rotation: Rotation,
    mirror: bool,
    dst: &mut Vec<u8>,
) {
    let pixels = width as usize * height as usize;
    dst.clear();
    super::decode::fit_buffer(dst, pixels * 3);
    if pixels == 0 || src.len() < pixels * 3 {
        return;
    }
    let (out_width, _) = rotated_size(width, height, rotation);
    let Walk {
        base,
        step_x,
        step_y,
    } = walk(width as usize, height as usize, rotation, mirror);
    for (y, row) in dst.chunks_exact_mut(out_width as usize * 3).enumerate() {
        let mut at = base + y as isize * step_y;
        for px in row.chunks_exact_mut(3) {
            // `at` stays within 0..pixels by construction of the walk.
            let i = at as usize * 3;
            if let Some(source) = src.get(i..i + 3) {
                px.copy_from_slice(source);
            }
            at += step_x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3x2 picture whose pixels are numbered 0..6 (R holds the number).
    fn numbered() -> Vec<u8> {
        (0u8..6).flat_map(|n| [n, 0, 0]).collect()
    }

    fn rotated(rotation: Rotation, mirror: bool) -> Vec<u8> {
        let mut out = Vec::new();
        rotate_rgb(&numbered(), 3, 2, rotation, mirror, &mut out);
        out.chunks_exact(3).map(|p| p[0]).collect()
    }

    // Source:  0 1 2
    //          3 4 5
    #[test]
    fn every_rotation_and_mirror_moves_pixels_where_expected() {
        assert_eq!(rotated(Rotation::None, false), [0, 1, 2, 3, 4, 5]);
        assert_eq!(rotated(Rotation::Cw90, false), [3, 0, 4, 1, 5, 2]);
        assert_eq!(rotated(Rotation::Cw180, false), [5, 4, 3, 2, 1, 0]);
        assert_eq!(rotated(Rotation::Cw270, false), [2, 5, 1, 4, 0, 3]);
        assert_eq!(rotated(Rotation::None, true), [2, 1, 0, 5, 4, 3]);
        assert_eq!(rotated(Rotation::Cw90, true), [0, 3, 1, 4, 2, 5]);
        assert_eq!(rotated(Rotation::Cw180, true), [3, 4, 5, 0, 1, 2]);
        assert_eq!(rotated(Rotation::Cw270, true), [5, 2, 4, 1, 3, 0]);
    }

    #[test]
    fn short_input_does_not_panic() {
        let mut out = Vec::new();
        rotate_rgb(&[1, 2], 3, 2, Rotation::Cw90, true, &mut out);
        assert_eq!(out, [0; 18]);
        rotate_rgb(&[], 0, 0, Rotation::Cw270, false, &mut out);
        assert!(out.is_empty());
    }
}
